import factory
from django.contrib.auth.models import Group

from accounts.tests.factories import UserFactory
from orgs.models import Membership, Organization, Role


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    """`MembershipFactory(role=Role.ADMIN)` points the membership at the admin group."""

    class Meta:
        model = Membership
        exclude = ("role",)

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.DEVELOPER
    group = factory.LazyAttribute(lambda m: Group.objects.get(name=Role(m.role).value))
