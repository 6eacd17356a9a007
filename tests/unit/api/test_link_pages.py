"""The opt-out link pages: language choice and what each page says (worker.api.link_pages)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from worker.api.link_pages import TEXTS, Page, choose_language, masked, render
from worker.model import Category


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("en;q=0.5, es;q=0.9", "es"),
        ("pt-BR,pt;q=0.9", "en"),  # no Portuguese texts yet: English
        ("ja, de;q=0.3", "de"),
        ("es;q=bogus, fr;q=0.1", "fr"),
        ("de, es", "de"),  # equal q: the first
    ],
)
def test_the_language_is_picked_from_accept_language(header: str | None, language: str) -> None:
    assert choose_language(header) == language


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_the_confirmation_page_is_a_form_with_a_button_in_the_language(language: str) -> None:
    page = render(Page.CONFIRM, language, address="+447700900123", category=Category.MARKETING)
    outline = _Outline()
    outline.feed(page)
    tags = dict(outline.tags)
    assert tags["html"] == {"lang": language}
    assert tags["form"] == {"method": "post"}
    assert tags["button"] == {"type": "submit"}
    assert "script" not in tags
    assert "link" not in tags
    assert "img" not in tags
    assert TEXTS[language].what_marketing in page
    assert TEXTS[language].button in page
    assert "0123" in page
    assert "+447700900123" not in page


@pytest.mark.parametrize("which", [p for p in Page if p is not Page.CONFIRM])
def test_the_other_pages_have_no_form(which: Page) -> None:
    page = render(which, "es", address="+447700900123")
    assert "<form" not in page
    assert '<html lang="es">' in page


def test_the_address_is_escaped_and_masked() -> None:
    assert masked("+447700900123") == "•••• 0123"
    assert masked("+1234") == "+1234"
    page = render(Page.DONE, "en", address="<script>x</script>")
    assert "<script>" not in page


def test_the_app_refuses_to_start_without_a_secret_and_never_shows_it() -> None:
    from worker.api.links import create_links_app
    from worker.config import Settings
    from worker.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^OPTOUT_LINK_SECRET is not set"):
        create_links_app(Settings.from_mapping({}), "postgresql://db/optout")
    secret = "do-not-show-this-secret-anywhere-0123456789"
    settings = Settings.from_mapping({"OPTOUT_LINK_SECRET": secret})
    assert secret not in repr(settings)
    assert secret not in repr(settings.link_signing_secret())
