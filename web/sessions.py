"""Sessions for people: sliding expiry, and signed out in the middle of typing.

`SlidingSessionMiddleware` (in MIDDLEWARE after authentication) moves a signed-in
person's session end to `SESSION_COOKIE_AGE` from now when they make a request, as
Django's `SESSION_SAVE_EVERY_REQUEST` would, with two differences:
- the live pages' background refreshes do not count (a dashboard left open in a tab is
  not activity);
- the session is saved (one UPDATE, and the cookie sent again) at most once per
  `SESSION_SLIDE_SECONDS` (60 by default): a script making a hundred calls a second
  would otherwise write its session a hundred times a second. The end of a session
  is thereby at most that much earlier than "idle for `SESSION_COOKIE_AGE`".

Signed out in the middle of typing: keep the form, sign in again, get it back.

A form page decorated with `login_required_keeping_form` that receives a POST from a
visitor whose session has ended (idle longer than `SESSION_COOKIE_AGE`, or signed out
in another tab) stashes the submitted fields in the new, anonymous session, says so,
and sends the visitor to the sign-in page. `login()` keeps an anonymous session's data,
so after signing in the same page opens with `stashed_form_data` filled in: nothing
typed is lost, and nothing is submitted without the person pressing the button again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
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
SLID_AT = "web:slid-at"  # when the session was last saved for sliding, seconds since the epoch


def slid_at_sign_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """Signing in saves the session: that is its first slide (connected to
    `user_logged_in` in WebConfig.ready)."""
    if request is not None and hasattr(request, "session"):
        request.session[SLID_AT] = int(time.time())


class SlidingSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and not request.path.endswith(LIVE_SUFFIX):
            now = int(time.time())
            if now - request.session.get(SLID_AT, 0) >= settings.SESSION_SLIDE_SECONDS:
                request.session[SLID_AT] = now  # modified: saved, its end moved
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
