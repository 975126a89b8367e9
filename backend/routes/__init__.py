"""HTTP routes, one module per area; `backend.app` includes their routers."""
