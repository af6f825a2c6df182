from django.urls import re_path

from accounts.api import views

urlpatterns = [
    re_path(r"^register/?$", views.RegisterView.as_view(), name="auth-register"),
    re_path(r"^login/?$", views.LoginView.as_view(), name="auth-login"),
    re_path(r"^logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^csrf/?$", views.CsrfView.as_view(), name="auth-csrf"),
    re_path(r"^tokens/?$", views.TokenListView.as_view(), name="auth-tokens"),
    re_path(r"^tokens/(?P<pk>[0-9]{1,18})/?$", views.TokenDetailView.as_view(), name="auth-token"),
]
