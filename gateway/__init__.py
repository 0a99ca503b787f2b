"""MIP gateway: the Fabric Gateway client, and (later) the HTTP service, CLI and counter page."""
