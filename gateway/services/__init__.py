"""What the API does, apart from HTTP: each module holds one area's logic."""
