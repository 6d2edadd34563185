"""A stock DRF backend: nothing custom; a replayed uid gets DRF's 400 (unique validator)."""

from django.db import models


class Sequence(models.Model):
    uid = models.CharField(max_length=100, unique=True)
    source = models.CharField(max_length=200)
    key = models.CharField(max_length=200, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "stock_sequence"


class Film(models.Model):
    uid = models.CharField(max_length=100, unique=True)
    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="stock_films")
    source = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    raw = models.TextField(blank=True)
    data = models.JSONField()

    class Meta:
        db_table = "stock_film"
