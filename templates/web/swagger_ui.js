{# drf-spectacular's Swagger UI script, with the CSRF token read from the cookie on every #}
{# request: it sets the token rendered into the page, which signing in ("Try it out" on #}
{# /auth/login) rotates, and every later write would fail with 403 until a reload. #}
(function () {
  "use strict";
  const header = "{{ csrf_header_name|escapejs }}";
  const cookieName = "{{ csrf_cookie_name|escapejs }}";
  const csrfToken = () => {
    for (const part of document.cookie.split(";")) {
      const [name, ...value] = part.trim().split("=");
      if (name === cookieName) {
        return decodeURIComponent(value.join("="));
      }
    }
    return null;
  };
  const originalFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const method = ((init && init.method) || "GET").toUpperCase();
    const token = csrfToken();
    if (init && token && !["GET", "HEAD", "OPTIONS", "TRACE"].includes(method)) {
      if (init.headers instanceof Headers) {
        init.headers.set(header, token);
      } else {
        init.headers = { ...(init.headers || {}), [header]: token };
      }
    }
    return originalFetch(input, init);
  };
})();
{% include "drf_spectacular/swagger_ui.js" %}
