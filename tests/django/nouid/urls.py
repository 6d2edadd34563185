from rest_framework import routers

from .views import FilmViewSet, SequenceViewSet

router = routers.DefaultRouter()
router.register("sequences", SequenceViewSet)
router.register("films", FilmViewSet)

urlpatterns = router.urls
