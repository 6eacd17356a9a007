"""The Spanish language pack (``es``): see :mod:`worker.classify.packs.base` for what a pack holds."""

from __future__ import annotations

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase, any_of, heads, pairs, words
from worker.model import Category, Intent, Language, MatchMode

_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_EXACT, _LEADING = MatchMode.EXACT, MatchMode.LEADING

_ES_MSG_WORDS = (
    "mensajes", "sms", "textos", "mensajitos", "promociones", "publicidad", "ofertas", "correos",
    "notificaciones", "alertas",
)  # fmt: skip
_ES_MSGS = any_of(_ES_MSG_WORDS)
_ES_STOP_VERBS = (
    "enviar", "enviarme", "enviarnos", "mandar", "mandarme", "escribir", "escribirme", "molestar",
    "molestarme", "contactar", "contactarme", "llamar", "llamarme",
)  # fmt: skip

SPANISH = LanguagePack(
    language=Language.ES,
    keywords=(
        KeywordGroup(
            "stop", _O, _LEADING, ("BAJA", "CANCELAR", "DETENER", "DESUSCRIBIR", "DESUSCRIBIRME", "PARAR")
        ),
        KeywordGroup("stop", _O, _LEADING, ("ALTO", "FIN", "BASTA", "NO MÁS", "NO MAS"), brands=False),
        KeywordGroup(
            "stop_marketing",
            _O,
            _LEADING,
            pairs("BAJA", "PUBLICIDAD PROMOCIONES"),
            category=Category.MARKETING,
        ),
        KeywordGroup("stop", _O, _EXACT, ("PARA",)),
        KeywordGroup("start", _I, _LEADING, ("SUSCRIBIR", "SUSCRIBIRME")),
        KeywordGroup("start", _I, _LEADING, ("ALTA", "COMENZAR", "INICIAR"), brands=False),
        KeywordGroup("help", _H, _LEADING, ("AYUDA",)),
    ),
    phrases=(
        # "dar de baja mi tarjeta" cancels a card: an object after "de baja" is not about messages.
        Phrase(
            _O,
            r"\b(?:d[aáée]\w*|doy) de baja\b(?! (?:mi|mis|la|el|un|una|los|las|tu|su|sus|este|esta)\b)",
            ("baja",),
        ),
        *heads(
            _O,
            "no quiero que|ya no quiero que",
            r" (?:me |nos )?(?:escrib|env[ií]|mand|contact|llam)\w*",
            ("que",),
        ),
        *heads(_O, "cancelar", r" (?:la |mi |tu |su )?suscripci[oó]n\b", ("suscripción",)),
        *heads(_O, "basta de|basta ya de", rf" {_ES_MSGS}\b", _ES_MSG_WORDS),
        *heads(
            _O,
            "no",
            r" (?:me |nos )?(?:env[ií]\w*|mand\w*|escrib\w*|contact\w*)"
            rf"(?: m[aá]s| nada)?(?: {_ES_MSGS}| m[aá]s| nada)\b",
            ("más", "nada", *_ES_MSG_WORDS),
        ),
        *heads(
            _O,
            "no quiero|no deseo",
            rf" (?:recibir |seguir recibiendo )?(?:m[aá]s )?(?:sus |estos |tus |)"
            rf"(?:{_ES_MSGS}|recibir)\b",
            ("recibir", *_ES_MSG_WORDS),
        ),
        *heads(_O, "ya no quiero|ya no deseo", r" (?:recibir|seguir)\b", ("recibir", "seguir")),
        *heads(_O, "no más|no mas", rf" {_ES_MSGS}\b", _ES_MSG_WORDS),
        Phrase(
            _O,
            r"\b(?:fuera|sal\w*|s[aá](?:c|qu)\w*|b[oó]rr\w*|elim[ií]n\w*|qu[ií]t\w*|ret[ií]r\w*) (?:de|del) "
            r"(?:(?:la|su|sus|tu|tus|esta|estos|vuestra|vuestras) )?"
            rf"(?:lista|listas|base de datos|grupo de difusi[oó]n|{_ES_MSGS})\b",
            ("lista", "listas", "datos", "difusión", *_ES_MSG_WORDS),
        ),
        Phrase(_O, r"\b(?:b[oó]rr|elim[ií]n|qu[ií]t|sa[cq]u?)\w* (?:mi|el|mi|este) n[uú]mero\b", ("número",)),
        *heads(
            _O,
            "dejen de|deja de|deje de|paren de|para de|pare de",
            r" (?:enviar|mandar|escribir|molestar|contactar|llamar)\w*\b",
            (
                "enviar",
                "enviarme",
                "enviarnos",
                "mandar",
                "mandarme",
                "escribir",
                "escribirme",
                "molestar",
                "molestarme",
                "contactar",
                "contactarme",
                "llamar",
                "llamarme",
            ),
        ),
        Phrase(
            _O,
            r"\b(?:para|paren|pare|deja|dejen|deje) ya de "
            r"(?:enviar|mandar|escribir|molestar|contactar|llamar)\w*",
            _ES_STOP_VERBS,
        ),
        Phrase(
            _O,
            r"\bdesuscrib\w*|\bdesinscrib\w*",
            (
                "desuscribir",
                "desuscribirme",
                "desuscribanme",
                "desuscríbanme",
                "desinscribir",
                "desinscribirme",
            ),
        ),
        Phrase(
            _I,
            r"\b(?:d[aáée]\w*|doy) de alta\b(?! (?:mi|mis|la|el|un|una|los|las|tu|su|sus|este|esta)\b)",
            ("alta",),
        ),
        *heads(
            _I,
            "volver a|quiero",
            rf" (?:recibir(?: los| las| sus| tus| estos| estas)? {_ES_MSGS}|suscribirme)\b",
            ("suscribirme", *_ES_MSG_WORDS),
        ),
        *heads(
            _H,
            "ayuda",
            rf" (?:con|sobre|para) (?:este|esta|el|la|los|estos|su|sus|mi|mis) (?:\w+ )?"
            rf"(?:servicio|suscripci[oó]n|{_ES_MSGS})\b",
            ("ayuda",),
        ),
    ),
    courtesy=words(
        "por favor porfa porfavor xfa pf gracias muchas ya ahora todo todos me ok vale inmediatamente"
    ),
    ordinary=words(
        "el la los las un una en con que qué cuando cuándo donde dónde como cómo es está esta mi mis tu su "
        "pedido cita reserva mañana hoy hora precio del al y o pero no"
    ),
    conjunctions=words("y e"),
    negations=r"\b(?:no|nunca|jam[aá]s|ni)\b",
    wrong_number=(
        Phrase(_O, r"\b(?:n[uú]mero|persona) equivocad[oa]\b", ("número", "persona")),
        Phrase(_O, r"\bequivoc\w* de (?:n[uú]mero|persona)\b", ("número", "persona")),
    ),
    replies={
        _O: "Te has dado de baja y no recibirás más mensajes de {sender}. Responde ALTA para volver a "
        "suscribirte.",
        _I: "Te has suscrito de nuevo a los mensajes de {sender}. Responde BAJA para darte de baja o AYUDA "
        "para obtener ayuda.",
        _H: "Responde BAJA para darte de baja o ALTA para volver a suscribirte. Pueden aplicarse tarifas de "
        "mensajes y datos.",
    },
)
