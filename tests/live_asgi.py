"""sparecycles.asgi as the tests' live daphne serves it: the same application, but it forgets
Django's content-type cache before each HTTP request.

Transactional tests flush the shared test database after each test, and post_migrate then
recreates the content types under new ids. A long-lived server process would otherwise keep
the old ids in ContentType's per-process cache, and its next admin log entry would name a
content type that no longer exists (a FOREIGN KEY failure at commit). A production server's
content types never change under it, so only the tests need this.
"""

from sparecycles.asgi import application as site  # sets Django up


async def application(scope, receive, send):
    if scope["type"] == "http":
        from django.contrib.contenttypes.models import ContentType  # after set-up

        ContentType.objects.clear_cache()
    await site(scope, receive, send)
