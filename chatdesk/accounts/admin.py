"""Users and groups in the admin, without a way up: only a superuser grants superuser or staff status,
edits a superuser, or hands out a permission. Everyone else (managers) can give a user or a group only
permissions they hold themselves, and groups made of such permissions; what a user or group already had
beyond that is kept, never shown, never lost."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Model, Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest


def permissions_held(user: User) -> QuerySet[Permission]:
    """The permissions `user` has directly or through a group (every one for a superuser)."""
    if user.is_superuser:
        return Permission.objects.all()
    return Permission.objects.filter(Q(user=user) | Q(group__user=user)).distinct()


def groups_within(user: User) -> QuerySet[Group]:
    """The groups all of whose permissions `user` holds."""
    return Group.objects.exclude(permissions__in=Permission.objects.exclude(pk__in=permissions_held(user)))


class NoEscalationMixin:
    """Limits the many-to-many choices to what the requesting user may hand out, and keeps the
    object's other (hidden) choices when the form is saved."""

    limited_fields: tuple[str, ...] = ()

    def allowed_choices(self, field: str, request: HttpRequest) -> QuerySet[Any]:
        assert isinstance(request.user, User)
        return groups_within(request.user) if field == "groups" else permissions_held(request.user)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest | None = None, **kwargs: Any) -> Any:
        if request is not None and db_field.name in self.limited_fields and not request.user.is_superuser:
            kwargs["queryset"] = self.allowed_choices(db_field.name, request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        hidden: dict[str, list[Model]] = {}
        if change and not request.user.is_superuser:
            for field in self.limited_fields:
                allowed = self.allowed_choices(field, request)
                hidden[field] = list(getattr(form.instance, field).exclude(pk__in=allowed))
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        for field, kept in hidden.items():
            getattr(form.instance, field).add(*kept)


class SafeUserAdmin(NoEscalationMixin, UserAdmin):
    limited_fields = ("groups", "user_permissions")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        return (*readonly, "is_superuser", "is_staff")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


class SafeGroupAdmin(NoEscalationMixin, GroupAdmin):
    limited_fields = ("permissions",)


admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.register(User, SafeUserAdmin)
admin.site.register(Group, SafeGroupAdmin)
