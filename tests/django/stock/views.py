from rest_framework import viewsets

from .models import Film, Sequence
from .serializers import FilmSerializer, SequenceSerializer


class SequenceViewSet(viewsets.ModelViewSet):
    queryset = Sequence.objects.all().order_by("id")
    serializer_class = SequenceSerializer


class FilmViewSet(viewsets.ModelViewSet):
    queryset = Film.objects.all().order_by("id")
    serializer_class = FilmSerializer
