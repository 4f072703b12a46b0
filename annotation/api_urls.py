"""MLflow tracking-protocol routes (see annotation.api and traces.api)."""

urlpatterns = []
