"""/docs and /redoc work offline: every script and style they load is served by the app itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmem_server import create_app

from support import make_settings

_REFERENCE = re.compile(
    r"""(?:src|href)\s*=\s*["']([^"']+)["']|(?:_url|url)\s*:\s*["']([^"']+)["']"""
)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_only_assets_this_server_serves(tmp_path: Path, page: str) -> None:
    # No lifespan: the pages need neither the stores nor the model.
    client = TestClient(create_app(make_settings(tmp_path)))
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html, html
    references = [a or b for a, b in _REFERENCE.findall(html)]
    assets = [ref for ref in references if ref.endswith((".js", ".css"))]
    assert len(assets) >= (2 if page == "/docs" else 1), html
    for ref in references:
        assert "://" not in ref and not ref.startswith("//"), f"{page} loads {ref} from elsewhere"
    for asset in assets:
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 50_000, asset  # the real bundle, not an error page
    assert client.get("/openapi.json").json()["info"]["title"] == "agentmem"
