"""API tokens: what scripts, CI jobs and the `hv` command line sign in with."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ApiToken(models.Model):
    """A bearer token of one user, kept only as the SHA-256 digest of its secret.

    The secret is 256 random bits, so a fast hash is as safe as a slow one here (nothing
    can be guessed) and costs nothing per request; the digest is what requests look up.
    Revoking deletes the row: the token stops working with the next request.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What or who uses it, for its owner.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "expires_at"], name="apitoken_user_expires")]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="apitoken_expires_after_created"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"
