"""jupyter-collaboration's update store, created as the server starts."""


async def create_collaboration_store(serverapp):
    """Create jupyter-collaboration's update store before any room opens.

    Every room opens the store (by default one SQLite file shared by all
    rooms) on its own, and creates it when it is missing, with no lock
    shared between rooms. When several rooms open at once on a new lab, as
    when an agent reads notebooks in parallel, they all create it: all but
    one fail ("table yupdates already exists"), and their writes then fail
    for the life of the room ("no such table", "attempt to write a readonly
    database", "database is locked"). Opened once here, as the server
    starts, the store exists before any room can open it."""
    store_class = serverapp.web_app.settings.get("collaborative_ystore_class")
    if store_class is None or not hasattr(store_class, "db_path"):
        return  # no collaboration, or a store that is not one shared file
    try:
        async with store_class(config=serverapp.config, path="jupyter-mcp-sidecar", log=serverapp.log) as store:
            await store.db_initialized.wait()
    except Exception:
        serverapp.log.warning("jupyter-mcp-sidecar: could not create the collaboration store", exc_info=True)
