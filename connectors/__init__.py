"""Connections and connector types (REST, SQLPG, SSH, SMTP, GIT, SCP): one module per type."""
