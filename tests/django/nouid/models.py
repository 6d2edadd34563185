"""A stock DRF backend whose models have no uid at all (a posted uid is ignored)."""

from django.db import models


class Sequence(models.Model):
    source = models.CharField(max_length=200)
    key = models.CharField(max_length=200, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "nouid_sequence"


class Film(models.Model):
    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="nouid_films")
    source = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    raw = models.TextField(blank=True)
    data = models.JSONField()

    class Meta:
        db_table = "nouid_film"
