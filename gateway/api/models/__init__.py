"""Request and response models shared by several routers, and one module per area."""
