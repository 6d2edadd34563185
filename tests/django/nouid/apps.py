from django.apps import AppConfig


class NouidConfig(AppConfig):
    name = "nouid"
