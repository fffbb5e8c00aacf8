"""Search as tools for agents: the app with --mcp, listed and called through the ``mcp`` client package."""

import asyncio
import base64
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


pytest.importorskip("mcp", reason="mcp is in requirements.txt (the app's --mcp needs it)")

TOOLS = {"search_products", "search_by_image", "similar_products", "get_product"}


@pytest.fixture(scope="module")
def mcp_app(open_app):
    return open_app


def session_run(url: str, work):
    """Opens an MCP session over streamable HTTP and runs ``work(session)`` in it."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def main():
        async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(main())


def payload(result) -> object:
    """A tool result's JSON (Gradio sends it as text content)."""
    assert not result.isError, result.content
    return json.loads(result.content[0].text)


def test_the_search_tools_are_listed_with_typed_described_parameters(mcp_app):
    async def work(session):
        return (await session.list_tools()).tools

    tools = {t.name: t for t in session_run(mcp_app.url, work)}
    assert TOOLS <= set(tools)
    search = tools["search_products"]
    assert "catalog" in search.description
    props = search.inputSchema["properties"]
    assert props["query"]["type"] == "string" and props["k"]["type"] == "integer"
    assert "red striped t-shirt" in props["query"]["description"] and "hybrid" in props["mode"]["description"]
    assert "url" in json.dumps(tools["search_by_image"].inputSchema).lower()


def test_an_agent_searches_looks_up_and_asks_for_more_like_it(mcp_app, demo_manifest):
    picture = next((Path(demo_manifest).parent / "images").glob("*.jpg"))
    data_uri = "data:image/jpeg;base64," + base64.b64encode(picture.read_bytes()).decode()

    async def work(session):
        found = payload(await session.call_tool("search_products", {"query": "red striped t-shirt", "k": 3}))
        first = found["results"][0]["item_id"]
        item = payload(await session.call_tool("get_product", {"item_id": first}))
        similar = payload(await session.call_tool("similar_products", {"item_id": first, "k": 4}))
        by_image = payload(await session.call_tool("search_by_image", {"image": data_uri, "k": 2}))
        missing = await session.call_tool("get_product", {"item_id": "no-such-item"})
        return found, item, similar, by_image, missing

    found, item, similar, by_image, missing = session_run(mcp_app.url, work)
    assert found["match"] == "good" and found["mode"] == "hybrid" and by_image["match"] in ("good", "weak")
    found, similar, by_image = found["results"], similar["results"], by_image["results"]
    assert len(found) == 3 and found[0]["image_url"].startswith(mcp_app.url.rstrip("/") + "/api/items/")
    assert item["item_id"] == found[0]["item_id"] and item["title"] == found[0]["title"]
    assert len(similar) == 4 and similar[0]["item_id"] == found[0]["item_id"]  # itself first, then its neighbours
    assert len(by_image) == 2 and by_image[0]["item_id"] == picture.stem  # the picture finds itself first
    assert missing.isError and "no-such-item" in missing.content[0].text
