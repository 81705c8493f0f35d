/*
 * avk_jsonsimd: see jsonsimd.h. Built without exceptions: every simdjson
 * call is checked through its error code.
 */
#include "common/contract/jsonsimd.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include <simdjson.h>

using namespace simdjson;

struct avk_jsonsimd {
        ondemand::parser parser;
        char *padded = nullptr; /* the text and SIMDJSON_PADDING readable bytes after it */
        size_t padded_cap = 0;
};

avk_jsonsimd_t *avk_jsonsimd_new(void)
{
        return new (std::nothrow) avk_jsonsimd();
}

void avk_jsonsimd_destroy(avk_jsonsimd_t *p)
{
        if (!p)
                return;
        std::free(p->padded);
        delete p;
}

/* One walk: the callbacks, their context, and whether the text holds a
 * backslash at all (most documents do not: their strings need no look). */
struct walk {
        const yajl_callbacks *cb;
        void *ctx;
        bool escapes;
};

static int walk_object(ondemand::object object, const walk &w);

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The text of a string token, from after its opening quote to its closing
 * one, when it holds no backslash: then it is the string itself, and
 * reading it from the text (which stage 1 has already checked: UTF-8,
 * control characters) saves simdjson's copy into its string buffer, and
 * the stall of reading back bytes just stored. A NULL data: unescape. */
static std::string_view plain(const char *text, const char *close)
{
        size_t len = static_cast<size_t>(close - text);
        if (std::memchr(text, '\\', len))
                return std::string_view();
        return std::string_view(text, len);
}

/* A field's key as it stands in the text, escapes and all: its closing
 * quote is the last quote before the colon ahead of the value (white space
 * allowed around the colon). */
static std::string_view key_text(ondemand::field &field)
{
        const char *text = field.key().raw();
        const char *at = field.value().raw_json_token().data() - 1;
        while (is_space(*at))
                at--;
        for (at--; is_space(*at); at--)
                ;
        return std::string_view(text, static_cast<size_t>(at - text));
}

/* Passes a field's key to cb: as it stands in the text, and only when cb
 * refuses it and it holds a backslash, again unescaped (jsonsimd.h). */
static int map_key(ondemand::field &field, const yajl_callbacks *cb, void *ctx)
{
        std::string_view key = key_text(field);
        if (cb->yajl_map_key(ctx, reinterpret_cast<const unsigned char *>(key.data()), key.size()))
                return 1;
        return std::memchr(key.data(), '\\', key.size()) &&
               field.unescaped_key().get(key) == SUCCESS &&
               cb->yajl_map_key(ctx, reinterpret_cast<const unsigned char *>(key.data()),
                                key.size());
}

static int walk_value(ondemand::value value, const walk &w)
{
        const yajl_callbacks *cb = w.cb;
        void *ctx = w.ctx;
        ondemand::json_type type;
        if (value.type().get(type) != SUCCESS)
                return 0;
        switch (type) {
        case ondemand::json_type::object: {
                ondemand::object object;
                return value.get_object().get(object) == SUCCESS && walk_object(object, w);
        }
        case ondemand::json_type::string: {
                /* The token runs from its opening quote to the next
                 * structural character. The string goes where its text
                 * stood (unescaping never lengthens it) with a NUL over or
                 * before the closing quote: ondemand reads a string token's
                 * first byte again, never the rest. */
                std::string_view token = value.raw_json_token();
                char *text = const_cast<char *>(token.data()) + 1;
                char *close = text + token.size() - 2;
                while (*close != '"')
                        close--;
                std::string_view s =
                    w.escapes ? plain(text, close)
                              : std::string_view(text, static_cast<size_t>(close - text));
                if (!s.data()) {
                        if (value.get_string().get(s) != SUCCESS)
                                return 0;
                        std::memcpy(text, s.data(), s.size());
                }
                text[s.size()] = '\0';
                return cb->yajl_string(ctx, reinterpret_cast<const unsigned char *>(text),
                                       s.size());
        }
        case ondemand::json_type::number: {
                /* The text as yajl passes it (avk_json_number converts it
                 * on both paths), once simdjson has found it a JSON number. */
                std::string_view text = value.raw_json_token();
                double grammar_check;
                if (value.get_double().get(grammar_check) != SUCCESS)
                        return 0;
                size_t len = text.size();
                while (len && std::strchr(" \t\r\n", text[len - 1]))
                        len--;
                return cb->yajl_number(ctx, text.data(), len);
        }
        case ondemand::json_type::boolean: {
                bool b;
                return value.get_bool().get(b) == SUCCESS && cb->yajl_boolean(ctx, b);
        }
        case ondemand::json_type::null: {
                bool is_null;
                return value.is_null().get(is_null) == SUCCESS && is_null && cb->yajl_null(ctx);
        }
        case ondemand::json_type::array:
                break;
        }
        return 0;
}

static int walk_object(ondemand::object object, const walk &w)
{
        const yajl_callbacks *cb = w.cb;
        void *ctx = w.ctx;
        if (!cb->yajl_start_map(ctx))
                return 0;
        for (auto member : object) {
                ondemand::field field;
                if (std::move(member).get(field) != SUCCESS || !map_key(field, cb, ctx) ||
                    !walk_value(field.value(), w))
                        return 0;
        }
        return cb->yajl_end_map(ctx);
}

int avk_jsonsimd_walk(avk_jsonsimd_t *p, const char *buf, size_t len, const yajl_callbacks *cb,
                      void *ctx)
{
        if (len + SIMDJSON_PADDING > p->padded_cap) {
                char *grown = static_cast<char *>(std::realloc(p->padded, len + SIMDJSON_PADDING));
                if (!grown)
                        return 0;
                p->padded = grown;
                p->padded_cap = len + SIMDJSON_PADDING;
        }
        std::memcpy(p->padded, buf, len);
        std::memset(p->padded + len, 0, SIMDJSON_PADDING);
        ondemand::document doc;
        ondemand::object object;
        if (p->parser.iterate(p->padded, len, p->padded_cap).get(doc) != SUCCESS ||
            doc.get_object().get(object) != SUCCESS ||
            !walk_object(object, walk{cb, ctx, std::memchr(buf, '\\', len) != nullptr}))
                return 0;
        /* Nothing may follow the object. */
        const char *after;
        return doc.current_location().get(after) == OUT_OF_BOUNDS;
}
