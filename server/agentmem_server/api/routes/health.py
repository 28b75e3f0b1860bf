from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the app is up and its lifespan finished opening the stores."""
    return {"status": "ok"}
