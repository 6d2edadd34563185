"""The stock app's models and viewsets, plus the plain DRF way of filtering by uid: ?uid=X."""

from rest_framework import routers

from stock.views import FilmViewSet, SequenceViewSet


class UidFilter:
    def get_queryset(self):
        uid = self.request.query_params.get("uid")
        queryset = super().get_queryset()
        return queryset.filter(uid=uid) if uid is not None else queryset


class FilteredSequenceViewSet(UidFilter, SequenceViewSet):
    pass


class FilteredFilmViewSet(UidFilter, FilmViewSet):
    pass


router = routers.DefaultRouter()
router.register("sequences", FilteredSequenceViewSet)
router.register("films", FilteredFilmViewSet)

urlpatterns = router.urls
