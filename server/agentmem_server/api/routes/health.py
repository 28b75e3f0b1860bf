from fastapi import APIRouter

from agentmem.types import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """Liveness: the app is up and its lifespan finished opening the stores."""
    return Health(status="ok")
