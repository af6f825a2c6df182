"""Usernames are unique regardless of case, held by the database.

`user_register` checks `username__iexact` first for a friendly answer; this index makes
two concurrent registrations of "Ada" and "ada" impossible (the loser gets a 400).
Expression indexes work on PostgreSQL and on SQLite alike.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX auth_user_username_lower_uniq ON auth_user (lower(username))",
            "DROP INDEX auth_user_username_lower_uniq",
        )
    ]
