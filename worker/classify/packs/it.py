"""The Italian language pack (``it``): see :mod:`worker.classify.packs.base` for what a pack holds."""

from __future__ import annotations

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase, any_of, heads, pairs, words
from worker.model import Category, Intent, Language, MatchMode

_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_LEADING = MatchMode.LEADING

_IT_MSG_WORDS = ("messaggi", "sms", "pubblicità", "pubblicita", "promozioni", "offerte", "notifiche", "spam")
_IT_MSGS = any_of(_IT_MSG_WORDS)

ITALIAN = LanguagePack(
    language=Language.IT,
    keywords=(
        KeywordGroup(
            "stop",
            _O,
            _LEADING,
            ("STOP", "DISISCRIVI", "DISISCRIVIMI", "CANCELLAMI", "CANCELLA", "DISDETTA"),
        ),
        KeywordGroup("stop", _O, _LEADING, ("BASTA", "FINE", "ANNULLA"), brands=False),
        KeywordGroup(
            "stop_marketing",
            _O,
            _LEADING,
            pairs("STOP", "PUBBLICITÀ PROMOZIONI"),
            category=Category.MARKETING,
        ),
        KeywordGroup("start", _I, _LEADING, ("ISCRIVIMI", "ISCRIVI", "RIATTIVA")),
        KeywordGroup("start", _I, _LEADING, ("AVVIA", "INIZIA"), brands=False),
        KeywordGroup("help", _H, _LEADING, ("AIUTO",)),
    ),
    phrases=(
        *heads(_O, "non", r" (?:mi |ci )?(?:invia|mand|scriv|contatt)\w* (?:più|piu)\b", ("più",)),
        *heads(
            _O,
            "non voglio|non desidero|non",
            rf" (?:più |piu )?(?:ricevere|{_IT_MSGS})(?: più| piu)?\b",
            ("ricevere", *_IT_MSG_WORDS),
        ),
        Phrase(_O, r"\b(?:rimuov|elimin|cancell|togli|lev)\w* (?:il )?(?:mio|questo) numero\b", ("numero",)),
        *heads(
            _O,
            "dalla lista|dalle liste|dalla vostra lista|dalla tua lista|dalla mailing list",
            r"\b",
            ("lista", "liste"),
        ),
        *heads(
            _O,
            "cancellatemi|cancellami|toglietemi|toglimi|rimuovetemi|rimuovimi|disiscrivetemi|disiscrivimi|"
            "eliminatemi|eliminami|disiscrivermi|disiscrivere|cancellarmi|togliermi|rimuovermi|levatemi|levami",
            r"\b",
        ),
        *heads(
            _O,
            "smettete|smettila|smetti|smettetela|smettere",
            r" di (?:inviar|mandar|scriver|contattar)\w*\b",
        ),
        *heads(
            _O,
            "basta|niente più",
            rf"(?: con| con i| con le| con questi| con queste)? {_IT_MSGS}\b",
            _IT_MSG_WORDS,
        ),
        *heads(_I, "voglio|vorrei", r" (?:ri)?iscrivermi\b", ("iscrivermi", "riiscrivermi")),
        *heads(_I, "reiscrivimi", r"\b"),
        Phrase(
            _I,
            r"\b(?:ri)?iscriv\w*(?:mi|temi) (?:di nuovo|ancora|nuovamente)\b",
            ("nuovo", "ancora", "nuovamente"),
        ),
        Phrase(
            _I,
            r"\bricevere (?:di nuovo|ancora|nuovamente) (?:i |le |i vostri |le vostre |questi )?"
            + _IT_MSGS
            + r"\b",
            ("nuovo", "ancora", "nuovamente"),
        ),
        *heads(
            _H,
            "aiuto",
            r" (?:con|per|su|riguardo) (?:questo|questa|il|la|i|le|vostro|vostra|mio|mia) (?:\w+ )?"
            rf"(?:servizio|abbonamento|{_IT_MSGS})\b",
            ("aiuto",),
        ),
    ),
    courtesy=words("per favore perfavore grazie mille subito ora adesso tutto tutti ok pf x"),
    ordinary=words(
        "lo la i gli le un una in con su che quando dove come è mio mia ordine appuntamento "
        "prenotazione domani oggi l e o ma non"
    ),
    conjunctions=words("e ed"),
    negations=r"\b(?:non|mai|nemmeno|neanche)\b",
    wrong_number=(
        Phrase(_O, r"\b(?:numero|persona) sbagliat[oa]\b", ("sbagliato", "sbagliata")),
        Phrase(_O, r"\bsbagliat\w* (?:numero|persona)\b", ("numero", "persona")),
    ),
    replies={
        _O: "Iscrizione annullata: non riceverai più messaggi da {sender}. Rispondi ISCRIVIMI per iscriverti "
        "di nuovo.",
        _I: "Sei di nuovo iscritto ai messaggi di {sender}. Rispondi STOP per annullare l'iscrizione, AIUTO "
        "per assistenza.",
        _H: "Rispondi STOP per annullare l'iscrizione o ISCRIVIMI per iscriverti di nuovo. Potrebbero essere "
        "applicati costi.",
    },
)
