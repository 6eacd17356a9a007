"""The Portuguese language pack (``pt``): see :mod:`worker.classify.packs.base` for what a pack holds."""

from __future__ import annotations

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase, any_of, heads, pairs, words
from worker.model import Category, Intent, Language, MatchMode

_O, _I, _H = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP
_LEADING = MatchMode.LEADING

_PT_MSG_WORDS = (
    "mensagens",
    "sms",
    "promoções",
    "promocoes",
    "propaganda",
    "propagandas",
    "ofertas",
    "notificações",
)
_PT_MSGS = any_of(_PT_MSG_WORDS)

PORTUGUESE = LanguagePack(
    language=Language.PT,
    keywords=(
        KeywordGroup(
            "stop", _O, _LEADING, ("PARAR", "SAIR", "CANCELAR", "DESCADASTRAR", "DESCADASTRE", "REMOVER")
        ),
        KeywordGroup("stop", _O, _LEADING, ("PARE", "FIM", "CHEGA"), brands=False),
        KeywordGroup(
            "stop_marketing",
            _O,
            _LEADING,
            pairs("PARAR", "PUBLICIDADE PROMOÇÕES PROPAGANDA"),
            category=Category.MARKETING,
        ),
        KeywordGroup("start", _I, _LEADING, ("REATIVAR",)),
        KeywordGroup("start", _I, _LEADING, ("VOLTAR", "INICIAR"), brands=False),
        KeywordGroup("help", _H, _LEADING, ("AJUDA",)),
    ),
    phrases=(
        *heads(_O, "não|nao", rf" (?:me )?(?:envi|mand)\w* (?:mais|{_PT_MSGS})\b", ("mais", *_PT_MSG_WORDS)),
        *heads(
            _O,
            "não quero|nao quero|não desejo|nao desejo",
            rf" (?:mais )?(?:receber|{_PT_MSGS})\b",
            ("receber", *_PT_MSG_WORDS),
        ),
        Phrase(
            _O,
            r"\b(?:descadastr|desinscrev|remov|tir|exclu|apag|sair)\w*(?:-me| me)? "
            r"(?:da|dessa|desta|de sua|da sua|de vossa) lista\b",
            ("lista",),
        ),
        Phrase(
            _O,
            r"\bdescadastr\w*",
            (
                "descadastrar",
                "descadastre",
                "descadastra",
                "descadastrem",
                "descadastro",
                "descadastrado",
                "descadastrada",
            ),
        ),
        *heads(
            _O,
            "parem de|pare de|para de|deixem de|deixe de",
            r" (?:me )?(?:enviar|mandar|ligar|incomodar|mandarem|enviarem)\b",
            ("enviar", "mandar", "ligar", "incomodar", "mandarem", "enviarem"),
        ),
        *heads(_O, "chega de", rf" {_PT_MSGS}\b", _PT_MSG_WORDS),
        Phrase(
            _O, r"\b(?:remov|exclu|apag|tir|delet)\w* (?:o )?(?:meu|o meu|esse|este) n[uú]mero\b", ("número",)
        ),
        *heads(
            _O,
            "cancelar",
            r" (?:o recebimento|a assinatura|as mensagens|os sms|o envio)\b",
            ("recebimento", "assinatura", "mensagens", "sms", "envio"),
        ),
        *heads(_I, "quero voltar a|voltar a|quero", rf" receber(?: as| os)? {_PT_MSGS}\b", ("receber",)),
        Phrase(_I, r"\b(?:recadastr|reinscrev)\w*", ("recadastrar", "recadastre", "reinscrever")),
        Phrase(_I, r"\b(?:me )?(?:inscrev|cadastr|assin)\w* (?:de novo|novamente)\b", ("novo", "novamente")),
        *heads(
            _H,
            "ajuda",
            r" (?:com|sobre|para) (?:esse|este|essa|esta|o|a|os|as|seu|sua|meu|minha) (?:\w+ )?"
            rf"(?:serviço|assinatura|{_PT_MSGS})\b",
            ("ajuda",),
        ),
    ),
    courtesy=words("por favor obrigado obrigada brigado já agora tudo todos me ok pf pfv vlw imediatamente"),
    ordinary=words(
        "o a os as um uma em no na com para que quando onde como é meu minha pedido consulta reserva "
        "amanhã hoje do da e ou mas não"
    ),
    conjunctions=words("e"),
    negations=r"\b(?:não|nao|nunca|jamais)\b",
    wrong_number=(Phrase(_O, r"\b(?:n[uú]mero|pessoa) errad[oa]\b", ("errado", "errada")),),
    replies={
        _O: "Você foi descadastrado e não receberá mais mensagens de {sender}. Responda VOLTAR para se "
        "cadastrar de novo.",
        _I: "Você foi cadastrado novamente nas mensagens de {sender}. Responda PARAR para sair ou AJUDA para "
        "ajuda.",
        _H: "Responda PARAR para sair ou VOLTAR para se cadastrar de novo. Podem ser cobradas tarifas de "
        "mensagens e dados.",
    },
)
