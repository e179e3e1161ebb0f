"""End-to-end tests inside a real Kamailio (Debian's kamailio, app_python3, the C http_client)."""
