"""The Dutch language pack (``nl``): see :mod:`worker.classify.packs.base` for what a pack holds."""

from __future__ import annotations

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase, heads, pairs, words
from worker.model import Category, Intent, Language, MatchMode

_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_LEADING = MatchMode.LEADING

_NL_MSGS = r"(?:sms(?:'jes|jes|'en)?|berichten|berichtjes|reclame|spam|aanbiedingen|nieuwsbrieven)"

DUTCH = LanguagePack(
    language=Language.NL,
    keywords=(
        KeywordGroup("stop", _O, _LEADING, ("STOP", "STOPPEN", "AFMELDEN", "UITSCHRIJVEN", "UITSCHRIJVING")),
        KeywordGroup("stop", _O, _LEADING, ("EINDE",), brands=False),
        KeywordGroup("stop_marketing", _O, _LEADING, pairs("STOP", "RECLAME"), category=Category.MARKETING),
        KeywordGroup("start", _I, _LEADING, ("START", "AANMELDEN")),
        KeywordGroup("help", _H, _LEADING, ("HULP", "HELP")),
    ),
    phrases=(
        Phrase(
            _O,
            r"\bhoud?t? (?:(?:nou|eens|toch|nu) )?op met (?:(?:die|deze|jullie|de|uw|je|al die) )?"
            r"(?:berichten|sms|sms'jes|smsjes|spam|appjes|mails|reclame)\b",
            ("berichten", "sms", "smsjes", "spam", "appjes", "mails", "reclame"),
        ),
        *heads(_O, "geen", rf" {_NL_MSGS} meer\b", ("meer",)),
        *heads(
            _O,
            "meld me|meld mij|meld ons|schrijf me|schrijf mij|schrijf ons",
            r" (?:maar |alsjeblieft |aub |)(?:af|uit)\b",
            ("meld", "schrijf"),
        ),
        *heads(_O, "afmelden|uitschrijven|af te melden|uit te schrijven", r"\b"),
        *heads(
            _O,
            "stop met|stoppen met|hou op met|houd op met|stop eens met",
            r" (?:sms'en|smsen|sms|berichten|sturen|appen|mailen|bellen|spammen|me te)\b",
            ("met",),
        ),
        *heads(_O, "haal me|haal mij|haal mijn nummer|haal ons", r" (?:uit|van)\b"),
        *heads(_O, "verwijder", r" (?:me|mij|mijn nummer|mijn gegevens|ons)\b"),
        *heads(_O, "laat me|laat mij", r" (?:alsjeblieft |aub |)met rust\b", ("rust",)),
        *heads(
            _O,
            "niet meer",
            r" (?:sturen|sms'en|smsen|appen|mailen|bellen|contacteren|benaderen|benaderd|"
            r"gecontacteerd|gebeld|ge-sms't|berichten)\b",
            ("meer",),
        ),
        *heads(
            _O,
            "mijn nummer|mijn gegevens",
            r" (?:verwijderen|wissen|schrappen)\b",
            ("verwijderen", "wissen", "schrappen"),
        ),
        *heads(_I, "weer aanmelden|opnieuw aanmelden", r"\b"),
        *heads(_I, "meld me|meld mij", r" (?:weer |opnieuw )?aan\b"),
        Phrase(_I, rf"\b(?:{_NL_MSGS} )?(?:weer|opnieuw) ontvangen\b", ("ontvangen",)),
        *heads(
            _H,
            "hulp",
            r" (?:nodig )?(?:met|bij|voor|over) (?:deze|dit|de|het|jullie|uw|mijn) (?:\w+ )?"
            rf"(?:dienst|service|abonnement|sms-dienst|{_NL_MSGS})\b",
            ("hulp",),
        ),
    ),
    courtesy=words("aub alsjeblieft alstublieft graag dank u wel bedankt nu alles ok mij me svp"),
    ordinary=words(
        "het een op in aan met voor en of maar is zijn mijn wanneer waar hoe wat bestelling afspraak "
        "morgen vandaag niet geen bus"
    ),
    conjunctions=words("en"),
    negations=r"\b(?:niet|geen|nooit)\b",
    wrong_number=(
        Phrase(_O, r"\bverkeerde? (?:nummer|persoon)\b", ("verkeerd", "verkeerde")),
        Phrase(_O, r"\bverkeerd verbonden\b", ("verbonden",)),
    ),
    replies={
        _O: "Je bent afgemeld en ontvangt geen berichten meer van {sender}. Antwoord START om je weer aan te "
        "melden.",
        _I: "Je bent weer aangemeld voor berichten van {sender}. Antwoord STOP om je af te melden, HULP voor "
        "hulp.",
        _H: "Antwoord STOP om je af te melden of START om je weer aan te melden. Er kunnen kosten voor "
        "berichten en data gelden.",
    },
)
