"""Connections and connector types (REST, SQLPG, SSH, SMTP): one module per type."""
