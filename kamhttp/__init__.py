"""kamhttp: Kamailio's http_client module for KEMI Python routing scripts, on pycurl."""
__version__ = "0.1.0"
