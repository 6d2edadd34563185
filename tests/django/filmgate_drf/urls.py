from django.urls import include, path

from records.serializers import FilmSerializer, FlatFilmSerializer, SequenceSerializer
from records.views import Batch, Count, Detail, ListCreate


def api(film):
    return [
        path("sequences/", ListCreate.as_view(serializer_class=SequenceSerializer)),
        path("sequences/<int:pk>/", Detail.as_view(serializer_class=SequenceSerializer)),
        path("films/", ListCreate.as_view(serializer_class=film)),
        path("films/batch/", Batch.as_view(serializer_class=film)),
        path("films/count/", Count.as_view(serializer_class=film)),
        path("films/<int:pk>/", Detail.as_view(serializer_class=film)),
    ]


urlpatterns = [
    path("api/", include(api(FilmSerializer))),  # upstream.body = "nested"
    path("flat/api/", include(api(FlatFilmSerializer))),  # upstream.body = "flat"
    # stock DRF backends (DefaultRouter + ModelViewSet); namespaced, their URL names repeat
    path("stock/api/", include(("stock.urls", "stock"))),  # replayed uid -> 400, no ?uid= filter
    path("stockfilter/api/", include(("stockfilter.urls", "stockfilter"))),  # stock + ?uid= filter
    path("nouid/api/", include(("nouid.urls", "nouid"))),  # models without a uid
]
