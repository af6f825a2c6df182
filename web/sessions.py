"""Sessions for people: sliding expiry, and signed out in the middle of typing.

`SlidingSessionMiddleware` (in MIDDLEWARE after authentication) saves a signed-in
person's session on each request they make, which moves its expiry to
`SESSION_COOKIE_AGE` from now (Django's `SESSION_SAVE_EVERY_REQUEST`, minus the live
pages' background refreshes: a dashboard left open in a tab is not activity, and a
write every few seconds per tab would be waste).

Signed out in the middle of typing: keep the form, sign in again, get it back.

A form page decorated with `login_required_keeping_form` that receives a POST from a
visitor whose session has ended (idle longer than `SESSION_COOKIE_AGE`, or signed out
in another tab) stashes the submitted fields in the new, anonymous session, says so,
and sends the visitor to the sign-in page. `login()` keeps an anonymous session's data,
so after signing in the same page opens with `stashed_form_data` filled in: nothing
typed is lost, and nothing is submitted without the person pressing the button again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, QueryDict

STASH_KEY = "web:stashed-form"
SIGNED_OUT = (
    "You were signed out, so nothing was saved. Sign in again: what you typed "
    "will be back in the form."
)
# Never carried over: the CSRF token is rotated by signing in, and passwords stay out
# of the session store.
NOT_STASHED = {"csrfmiddlewaretoken", "password"}


LIVE_SUFFIX = "/live/"


class SlidingSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and not request.path.endswith(LIVE_SUFFIX):
            request.session.modified = True
        return self.get_response(request)


def login_required_keeping_form(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.method == "POST":
            fields = {k: v for k, v in request.POST.lists() if k not in NOT_STASHED}
            request.session[STASH_KEY] = {"path": request.path, "fields": fields}
            messages.warning(request, SIGNED_OUT)
        return redirect_to_login(request.get_full_path())

    return wrapper


def stashed_form_data(request: HttpRequest) -> QueryDict | None:
    """The fields stashed for this page, once (they are removed from the session)."""
    stash = request.session.get(STASH_KEY)
    if not stash or stash.get("path") != request.path:
        return None
    del request.session[STASH_KEY]
    data = QueryDict(mutable=True)
    for key, values in stash["fields"].items():
        data.setlist(key, values)
    return data
