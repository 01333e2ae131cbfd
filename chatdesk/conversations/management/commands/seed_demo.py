from django.core.management.base import BaseCommand

from chatdesk.conversations.demo import DEMO_LOGINS, demo_seed


class Command(BaseCommand):
    help = "Seed the demo shop: knowledge base, the agents and managers groups, and demo logins. Safe to run again."

    def handle(self, *args: object, **options: object) -> None:
        articles = demo_seed()
        self.stdout.write(f"{articles} new knowledge-base articles.")
        for role, (username, password) in DEMO_LOGINS.items():
            self.stdout.write(f"{role} login: {username} / {password}")
