"""One router per area; gateway/api/router.py mounts them all."""
