"""The admin site's own look: a title, and the operations links on its index page."""

from django.contrib import admin

admin.site.site_header = "hypervisor operations"
admin.site.site_title = "hypervisor admin"
admin.site.index_title = "Clusters, deployments and the people who run them"
# Links the django-rq dashboard (mounted at /django-rq/) from the index page.
admin.site.index_template = "admin/hypervisor_index.html"
# The model list in a sidebar would take a quarter of a 1280 px screen from every
# change list; the index page and the breadcrumbs lead to the same places.
admin.site.enable_nav_sidebar = False
