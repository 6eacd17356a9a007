"""The German language pack (``de``): see :mod:`worker.classify.packs.base` for what a pack holds."""

from __future__ import annotations

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase, heads, pairs, words
from worker.model import Category, Intent, Language, MatchMode

_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_LEADING = MatchMode.LEADING

_DE_MSGS = r"(?:sms|nachrichten|werbung|mitteilungen|textnachrichten|newsletter|angebote|werbenachrichten)"

GERMAN = LanguagePack(
    language=Language.DE,
    keywords=(
        KeywordGroup(
            "stop", _O, _LEADING, ("STOPP", "STOP", "ABMELDEN", "ABBESTELLEN", "AUSTRAGEN", "ABMELDUNG")
        ),
        KeywordGroup("stop", _O, _LEADING, ("ENDE", "KÜNDIGEN", "BEENDEN"), brands=False),
        KeywordGroup(
            "stop_marketing", _O, _LEADING, pairs("STOP STOPP", "WERBUNG"), category=Category.MARKETING
        ),
        KeywordGroup("start", _I, _LEADING, ("START", "ANMELDEN")),
        KeywordGroup("start", _I, _LEADING, ("STARTEN",), brands=False),
        KeywordGroup("help", _H, _LEADING, ("HILFE",)),
    ),
    phrases=(
        Phrase(
            _O,
            r"\bh[öo]r\w* (?:(?:endlich|doch|jetzt|mal) )?auf,? (?:mir |mich |uns )?(?:zu )?"
            r"(?:schreiben|simsen|nerven|kontaktieren|anzuschreiben)\b",
            ("schreiben", "simsen", "nerven", "kontaktieren", "anzuschreiben"),
        ),
        *heads(_O, "keine", rf" (?:weiteren )?{_DE_MSGS} mehr\b", ("mehr",)),
        *heads(_O, "will|möchte|wünsche", rf" (?:ich )?keine (?:weiteren )?{_DE_MSGS}\b", ("keine",)),
        *heads(
            _O,
            "melden|tragen|meld|trag|meldet|tragt|melde|trage",
            r" (?:sie |ihr |)mich (?:bitte )?(?:sofort )?(?:ab|aus)\b",
            ("mich",),
        ),
        *heads(_O, "abmelden|austragen|abbestellen|abzumelden|auszutragen|abzubestellen", r"\b"),
        *heads(
            _O,
            "entfernen sie|löschen sie|loeschen sie|streichen sie",
            r" (?:mich|meine nummer|meine daten)\b",
        ),
        Phrase(
            _O,
            r"\bh(?:ö|oe)r\w* (?:sie |ihr )?(?:bitte )?auf,? (?:mir |mich )?(?:zu )?"
            rf"(?:schreiben|kontaktieren|anzuschreiben|nerven|{_DE_MSGS})",
            ("auf",),
        ),
        *heads(
            _O,
            "nicht mehr",
            r" (?:kontaktieren|anschreiben|schreiben|anrufen|zuschicken|senden)\b",
            ("kontaktieren", "anschreiben", "schreiben", "anrufen", "zuschicken", "senden"),
        ),
        Phrase(
            _O,
            r"\b(?:schreib|schick|send|kontaktier)\w* (?:sie |ihr )?(?:mir|mich|uns) (?:bitte )?nicht mehr\b",
            ("mehr",),
        ),
        *heads(
            _O,
            "aus dem verteiler|aus der liste|aus ihrem verteiler|aus eurem verteiler|aus dem newsletter",
            r"\b",
            ("verteiler", "liste", "newsletter"),
        ),
        *heads(
            _O,
            "widerrufe|widerrufen",
            r" (?:hiermit )?(?:meine |die )?(?:einwilligung|zustimmung|einverständnis)\b",
            ("einwilligung", "zustimmung", "einverständnis"),
        ),
        *heads(_O, "lasst mich in ruhe|lassen sie mich in ruhe|lass mich in ruhe", r"\b", ("ruhe",)),
        *heads(
            _I,
            "wieder|erneut",
            r" (?:anmelden|abonnieren|aktivieren)\b",
            ("anmelden", "abonnieren", "aktivieren"),
        ),
        Phrase(_I, r"\bmeld\w* (?:sie |ihr )?mich (?:bitte )?(?:wieder|erneut) an\b", ("wieder", "erneut")),
        *heads(
            _I,
            "wieder",
            rf" (?:eure |ihre |die |deine )?{_DE_MSGS} (?:bekommen|erhalten|empfangen)\b",
            ("bekommen", "erhalten", "empfangen"),
        ),
        *heads(
            _H,
            "hilfe",
            r" (?:zu|mit|bei|für) (?:diesem|dieser|diesen|dem|der|den|ihrem|eurem|meinem) (?:\w+ )?"
            rf"(?:dienst|service|abo|{_DE_MSGS}|sms-dienst)\b",
            ("hilfe",),
        ),
    ),
    courtesy=words("bitte danke sofort jetzt alles alle mich ok dankeschön vielen dank endlich"),
    ordinary=words(
        "der die das den dem des ein eine einen zu zum zur an am im in auf mit für von und oder aber ist "
        "sind mein meine wann wo wie was warum bestellung termin nicht kein keine nie bus"
    ),
    conjunctions=words("und"),
    negations=r"\b(?:nicht|kein|keine|keinen|nie|niemals)\b",
    wrong_number=(
        Phrase(_O, r"\bfalsche[rn]? (?:nummer|person|empf[äa]nger)\b", ("falsche", "falscher", "falschen")),
        Phrase(_O, r"\bfalsch verbunden\b", ("falsch",)),
        Phrase(_O, r"\bsich (?:vertan|verw[äa]hlt)\b", ("vertan", "verwählt")),
    ),
    replies={
        _O: "Sie sind abgemeldet und erhalten keine Nachrichten mehr von {sender}. Antworten Sie START, um "
        "sich wieder anzumelden.",
        _I: "Sie sind wieder angemeldet für Nachrichten von {sender}. Antworten Sie STOPP zum Abmelden, "
        "HILFE für Hilfe.",
        _H: "Antworten Sie STOPP zum Abmelden oder START zum erneuten Anmelden. Es können Gebühren für "
        "Nachrichten und Daten anfallen.",
    },
)
