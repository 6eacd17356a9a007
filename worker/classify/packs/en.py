"""The English language pack (``en``): see :mod:`worker.classify.packs.base` for what a pack holds."""

from __future__ import annotations

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase, heads, pairs, words
from worker.model import Category, Intent, Language, MatchMode

_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_LEADING = MatchMode.LEADING
_MARKETING = Category.MARKETING

#: What "STOP <noun>" names when it asks for marketing alone: "STOP MARKETING", "STOP PROMOS".
#: Nouns of every kind of message ("STOP TEXTS", "STOP ALERTS") stay full blocks.
_EN_MARKETING = "MARKETING PROMO PROMOS PROMOTION PROMOTIONS ADS OFFERS"

# Message nouns reused by several English expressions.
_EN_MSGS = (
    r"(?:texts?|text messages|messages?|msgs?|sms|spam|promos?|promotions?|notifications?|alerts?|"
    r"marketing|offers|ads|emails?)"
)
#: The words of _EN_MSGS, as triggers: a phrase that needs one of these nouns is only worth trying
#: when one is there. Far rarer in chat than "again", "back" or "help" ("call me back please").
_EN_MSG_WORDS = (
    "text", "texts", "messages", "message", "msg", "msgs", "sms", "spam", "promo", "promos", "promotion",
    "promotions", "notification", "notifications", "alert", "alerts", "marketing", "offers", "ads", "email",
    "emails",
)  # fmt: skip

ENGLISH = LanguagePack(
    language=Language.EN,
    keywords=(
        KeywordGroup(
            "stop",
            _O,
            _LEADING,
            (
                "STOP",
                "UNSUBSCRIBE",
                "CANCEL",
                "END",
                "QUIT",
                "REVOKE",
                "OPTOUT",
                "OPT OUT",
                "OPT-OUT",
                "UNSUB",
                "REMOVE",
            ),
        ),
        KeywordGroup("stop_all", _O, _LEADING, ("STOPALL", "STOP ALL"), all_channels=True),
        KeywordGroup(
            "stop_marketing",
            _O,
            _LEADING,
            pairs("STOP UNSUBSCRIBE UNSUB", _EN_MARKETING),
            category=_MARKETING,
        ),
        KeywordGroup("start", _I, _LEADING, ("START", "UNSTOP", "SUBSCRIBE", "RESUBSCRIBE")),
        KeywordGroup("start", _I, _LEADING, ("RESUME",), brands=False),
        KeywordGroup("start_marketing", _I, _LEADING, pairs("START", _EN_MARKETING), category=_MARKETING),
        KeywordGroup(
            "start_marketing", _I, _LEADING, pairs("RESUME", _EN_MARKETING), brands=False, category=_MARKETING
        ),
        KeywordGroup("help", _H, _LEADING, ("HELP", "INFO")),
    ),
    phrases=(
        *heads(
            _O,
            "remove|delete|erase|unsubscribe|unenroll|unenrol|opt",
            r" (?:me|us|my (?:phone number|number|phone|cell|name|details|info|contact info))\b",
        ),
        *heads(
            _O, "take|get|drop|cross", r" (?:me|us|my (?:number|name)|this (?:number|phone)) off\b", ("off",)
        ),
        Phrase(_O, r"\bi (?:just )?want out\b", ("out",)),
        Phrase(
            _O,
            rf"\b(?:i'm|im|i am) (?:so )?done with (?:(?:these|your|the|this|ur|all|those) )?{_EN_MSGS}\b",
            _EN_MSG_WORDS,
        ),
        *heads(
            _O,
            "end|cancel|stop|terminate|unsubscribe",
            r" (?:my|the|this) (?:\w+ )?subscription\b",
            ("subscription",),
        ),
        *heads(_O, "opt|opting", r"(?: me| us)?[ -]?out\b"),
        *heads(_O, "optout|unsubscribe|unsub", r"\b"),
        *heads(_O, "no more|no further", rf" {_EN_MSGS}\b", _EN_MSG_WORDS),
        *heads(
            _O,
            "stop|quit|cease|end|halt",
            r" (?:(?:texting|txting|messaging|sending|contacting|calling|spamming|emailing|bothering|"
            r"harassing|"
            rf"sms)\b|(?:(?:all|the|these|those|your|this|any) )?{_EN_MSGS}\b)",
            (
                "texting",
                "txting",
                "messaging",
                "sending",
                "contacting",
                "calling",
                "spamming",
                "emailing",
                "bothering",
                "harassing",
                *_EN_MSG_WORDS,
            ),
        ),
        *heads(
            _O,
            "don't|dont|do not|never",
            r" (?:text|txt|message|msg|contact|sms|spam|email) (?:me|us|this number)\b",
            ("text", "txt", "message", "msg", "contact", "sms", "spam", "email"),
        ),
        *heads(
            _O,
            "don't|dont|do not",
            r" (?:send|want)(?: me)?(?: to (?:receive|get))?(?: any)?(?: more| further)?(?: of)?"
            rf"(?: these| your| the| this)? {_EN_MSGS}\b",
            _EN_MSG_WORDS,
        ),
        *heads(_O, "no longer", r" (?:want|wish|need)\b", ("longer",)),
        *heads(
            _O,
            "cancel",
            rf" (?:(?:all|the|these|those|your|this|my|any) )?(?:text |sms )?{_EN_MSGS}\b",
            _EN_MSG_WORDS,
        ),
        *heads(
            _O,
            "want out|out of",
            r"(?: (?:this|your|the|ur))? (?:list|mailing list|texts|messages)\b",
            ("out",),
        ),
        *heads(
            _O,
            "revoke|withdraw",
            r" (?:my |all )?(?:consent|permission|subscription)\b",
            ("consent", "permission", "subscription"),
        ),
        *heads(_O, "to be removed", r"\b", ("removed",)),
        *heads(
            _O,
            "stop receiving|stop getting",
            rf" (?:these|this|them|your|any|the|{_EN_MSGS})\b",
            ("receiving", "getting"),
        ),
        *heads(_O, "leave me alone|lose my number|lose this number", r"\b", ("alone", "lose")),
        *heads(_O, "said|told you|told you to|asked you to|asked to", r" (?:stop|unsubscribe|quit|cancel)\b"),
        *heads(_I, "resubscribe|re-subscribe", r"\b"),
        *heads(_I, "subscribe|sign|add|opt|put", r" (?:me|us) (?:back|again)\b"),
        *heads(_I, "opt in|opt-in|optin|opt me in|opt me back in|opt back in", r"\b", ("opt", "optin")),
        Phrase(_I, r"\b(?:want|like|wish|would love) to (?:re)?subscribe\b", ("subscribe", "resubscribe")),
        *heads(
            _I,
            "start|resume",
            rf" (?:sending|texting|messaging) (?:me )?(?:again|{_EN_MSGS})\b",
            ("sending", "texting", "messaging"),
        ),
        Phrase(_I, rf"\bwant (?:the |your |ur |those |these )?{_EN_MSGS} (?:again|back)\b", _EN_MSG_WORDS),
        Phrase(_H, r"\bwhat(?:'s| is) this (?:program|service|list|subscription)\b", ("program", "service")),
        *heads(
            _I, "receive|get", rf" (?:your |the |these |those |)(?:text )?{_EN_MSGS} again\b", _EN_MSG_WORDS
        ),
        *heads(
            _H,
            "help",
            r" (?:with|about|on|for) (?:this|these|the|your|my|ur) (?:\w+ )?"
            rf"(?:service|program|subscription|{_EN_MSGS})\b",
            ("service", "program", "subscription", *_EN_MSG_WORDS),
        ),
    ),
    courtesy=words(
        "please pls plz plse pleas thanks thank you thx ty tq tnx now asap immediately right already all "
        "everything me us ok okay k just again sir madam kindly permanently forever guys cheers"
    ),
    ordinary=words(
        "by it the an at in on to for of with and or but if so when what where why how who which is are "
        "was were be been am do does did can could will would should have has had my your our their his "
        "her its this that i we he she they date time order orders appointment booking reservation "
        "payment meeting delivery shipment class flight trip ticket card account transaction smoking "
        "worrying later tomorrow tonight soon here there then up down about over after before game line "
        "point don didn doesn won can't cannot not no never"
    ),
    conjunctions=words("and"),
    negations=r"\b(?:don't|dont|do not|doesn't|didn't|did not|never|not|won't|wont|can't|cannot)\b",
    wrong_number=(
        Phrase(_O, r"\bwrong (?:number|#|person|guy|girl|lady|man|contact|phone|name)(?!\w)", ("wrong",)),
        Phrase(_O, r"\bnot the (?:right|correct) (?:person|guy)\b", ("person", "guy")),
        Phrase(
            _O,
            r"\b(?:nobody|noone) (?:here )?(?:named|called|by (?:that|the) name)\b",
            ("nobody", "noone"),
        ),
        Phrase(
            _O,
            r"\bthis (?:number|phone) (?:doesn't|does not|no longer|don't) belongs? to\b",
            ("belong", "belongs"),
        ),
        Phrase(_O, r"\b(?:previous|old|former|last) owner\b", ("owner",)),
    ),
    replies={
        _O: "You are unsubscribed and will get no more messages from {sender}. Reply START to resubscribe.",
        _I: "You are subscribed again to messages from {sender}. Reply STOP to unsubscribe, HELP for help.",
        _H: "Reply STOP to unsubscribe or START to resubscribe. Msg&data rates may apply.",
    },
)
