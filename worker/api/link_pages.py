"""The pages of ``/u/{token}``: a confirmation form and its results, in the subscriber's language.

Small, accessible and self-contained: semantic HTML with a ``lang`` attribute, a ``<form
method=post>`` with a real ``<button>``, the question said in words (not only a button's colour),
no JavaScript, no external assets (one inline style sheet, which the Content-Security-Policy of
:mod:`worker.api.links` allows and nothing else), readable on a phone (viewport, system fonts,
large touch target, high contrast). Rendering is pure: text in, HTML out.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from worker.model import Category


class Page(StrEnum):
    CONFIRM = "confirm"
    DONE = "done"
    MALFORMED = "malformed"
    FORGED = "forged"
    EXPIRED = "expired"
    REUSED = "reused"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Texts:
    title: str
    question: str
    """{what} and {address} are filled in."""
    what_all: str
    what_marketing: str
    button: str
    done_title: str
    done: str
    invalid_title: str
    invalid: str
    expired_title: str
    expired: str
    reused_title: str
    reused: str
    unavailable_title: str
    unavailable: str


#: Texts per language, among the built-in keyword packs' languages; the others (pt, it, nl) get English
#: until a native speaker writes theirs.
TEXTS: MappingProxyType[str, Texts] = MappingProxyType({
    "en": Texts(
        "Unsubscribe", "Stop {what} to {address}?", "messages", "marketing messages",
        "Yes, unsubscribe me", "You are unsubscribed",
        "You will no longer receive {what} to {address}. You can close this page.",
        "This link does not work",
        "The link is incomplete or was changed. Copy the whole link from the message, or reply STOP.",
        "This link has expired", "Reply STOP to the message to unsubscribe.",
        "Already unsubscribed", "This link has already been used: nothing more to do.",
        "Please try again", "We could not record your request just now. Please try again in a minute.",
    ),
    "es": Texts(
        "Darse de baja", "¿Dejar de recibir {what} en {address}?", "mensajes",
        "mensajes publicitarios", "Sí, darme de baja", "Se ha dado de baja",
        "Ya no recibirá {what} en {address}. Puede cerrar esta página.",
        "Este enlace no funciona",
        "El enlace está incompleto o ha sido modificado. Copie el enlace completo del mensaje, o "
        "responda STOP.",
        "Este enlace ha caducado", "Responda STOP al mensaje para darse de baja.",
        "Ya se ha dado de baja", "Este enlace ya se ha usado: no hay nada más que hacer.",
        "Inténtelo de nuevo",
        "No hemos podido registrar su solicitud. Inténtelo de nuevo dentro de un minuto.",
    ),
    "fr": Texts(
        "Se désabonner", "Ne plus recevoir {what} sur le {address} ?", "de messages",
        "de messages publicitaires", "Oui, me désabonner", "Vous êtes désabonné",
        "Vous ne recevrez plus {what} sur le {address}. Vous pouvez fermer cette page.",
        "Ce lien ne fonctionne pas",
        "Le lien est incomplet ou a été modifié. Copiez le lien complet du message, ou répondez STOP.",
        "Ce lien a expiré", "Répondez STOP au message pour vous désabonner.",
        "Déjà désabonné", "Ce lien a déjà été utilisé : il n'y a plus rien à faire.",
        "Veuillez réessayer",
        "Nous n'avons pas pu enregistrer votre demande. Veuillez réessayer dans une minute.",
    ),
    "de": Texts(
        "Abmelden", "Keine {what} mehr an {address}?", "Nachrichten", "Werbenachrichten",
        "Ja, abmelden", "Sie sind abgemeldet",
        "Sie erhalten keine {what} mehr an {address}. Sie können diese Seite schließen.",
        "Dieser Link funktioniert nicht",
        "Der Link ist unvollständig oder wurde verändert. Kopieren Sie den ganzen Link aus der "
        "Nachricht, oder antworten Sie STOP.",
        "Dieser Link ist abgelaufen", "Antworten Sie STOP auf die Nachricht, um sich abzumelden.",
        "Bereits abgemeldet", "Dieser Link wurde bereits verwendet: Es ist nichts mehr zu tun.",
        "Bitte versuchen Sie es erneut",
        "Ihre Anfrage konnte gerade nicht gespeichert werden. Bitte versuchen Sie es in einer Minute erneut.",
    ),
})  # fmt: skip

_STYLE = (
    "body{font:1.125rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
    "color:#111;background:#fff}main{max-width:32rem;margin:0 auto;padding:1.5rem 1.25rem}"
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}"
    "button{font:inherit;font-weight:600;width:100%;min-height:3rem;padding:.75rem 1rem;border:0;"
    "border-radius:.5rem;background:#0b57d0;color:#fff;cursor:pointer}"
    "button:focus-visible{outline:3px solid #111;outline-offset:3px}"
    ".address{white-space:nowrap;font-variant-numeric:tabular-nums}"
    "@media (prefers-color-scheme:dark){body{color:#eee;background:#121212}"
    "button{background:#8ab4f8;color:#111}button:focus-visible{outline-color:#eee}}"
)


def choose_language(accept_language: str | None) -> str:
    """The best of :data:`TEXTS`' languages for an ``Accept-Language`` header (q-values honoured,
    ``fr-CA`` matches ``fr``), else English."""
    best, best_q = "en", 0.0
    for position, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q -= position * 1e-6  # equal q: the earlier one wins
        if language in TEXTS and q > best_q:
            best, best_q = language, q
    return best


def masked(address: str) -> str:
    """The address as the page shows it: the last four characters only (a link may be forwarded,
    and the page need not repeat a whole number to whoever opens it)."""
    return "•••• " + address[-4:] if len(address) > 6 else address


def render(page: Page, language: str, *, address: str = "", category: Category = Category.ALL) -> str:
    """The HTML of ``page`` in ``language`` (a key of :data:`TEXTS`)."""
    texts = TEXTS.get(language, TEXTS["en"])
    what = texts.what_marketing if category is Category.MARKETING else texts.what_all
    shown = f'<span class="address">{html.escape(masked(address))}</span>'
    if page is Page.CONFIRM:
        title = texts.title
        body = (
            f"<p>{texts.question.format(what=html.escape(what), address=shown)}</p>\n"
            f'<form method="post">\n<button type="submit">{html.escape(texts.button)}</button>\n</form>'
        )
    elif page is Page.DONE:
        title = texts.done_title
        body = f"<p>{texts.done.format(what=html.escape(what), address=shown)}</p>"
    else:
        title, text = {
            Page.MALFORMED: (texts.invalid_title, texts.invalid),
            Page.FORGED: (texts.invalid_title, texts.invalid),
            Page.EXPIRED: (texts.expired_title, texts.expired),
            Page.REUSED: (texts.reused_title, texts.reused),
            Page.UNAVAILABLE: (texts.unavailable_title, texts.unavailable),
        }[page]
        body = f"<p>{html.escape(text)}</p>"
    return (
        f'<!doctype html>\n<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
