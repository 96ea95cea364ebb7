using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace IdDisentangle.Weights;

/// <summary>
/// Reads a JavaScript value literal (objects with bare or quoted keys, arrays, strings, numbers such as
/// <c>.5</c> or <c>1e-7</c>, <c>!0</c>/<c>!1</c>, true/false/null) into JSON nodes, without running any code:
/// minified model files embed their model.json that way.
/// </summary>
internal sealed class JsLiteral
{
    readonly string _s;
    int _i;

    JsLiteral(string s, int start)
    {
        _s = s;
        _i = start;
    }

    /// <summary>Parses the literal that starts at <paramref name="start"/>; <paramref name="end"/> is where it
    /// stopped.</summary>
    public static JsonNode? Parse(string source, int start, out int end)
    {
        var p = new JsLiteral(source, start);
        var v = p.Value();
        end = p._i;
        return v;
    }

    JsonNode? Value()
    {
        Skip();
        if (_i >= _s.Length)
            throw Error("unexpected end");
        char c = _s[_i];
        switch (c)
        {
            case '{':
                return Object();
            case '[':
                return Array();
            case '"' or '\'':
                return JsonValue.Create(String());
            case '!':
                _i++;
                Skip();
                if (_s[_i] == '0')
                {
                    _i++;
                    return JsonValue.Create(true);
                }
                if (_s[_i] == '1')
                {
                    _i++;
                    return JsonValue.Create(false);
                }
                throw Error("unsupported '!' expression");
        }
        if (c == '-' || c == '+' || c == '.' || char.IsDigit(c))
            return JsonValue.Create(Number());
        string word = Identifier();
        return word switch
        {
            "true" => JsonValue.Create(true),
            "false" => JsonValue.Create(false),
            "null" or "void" => null,
            _ => throw Error($"unsupported identifier '{word}' (only literals are read)"),
        };
    }

    JsonObject Object()
    {
        var o = new JsonObject();
        _i++;
        while (true)
        {
            Skip();
            if (_s[_i] == '}')
            {
                _i++;
                return o;
            }
            string key =
                _s[_i] is '"' or '\'' ? String()
                : char.IsDigit(_s[_i]) ? Number().ToString(CultureInfo.InvariantCulture)
                : Identifier();
            Skip();
            if (_s[_i] != ':')
                throw Error("expected ':'");
            _i++;
            o[key] = Value();
            Skip();
            if (_s[_i] == ',')
                _i++;
            else if (_s[_i] != '}')
                throw Error("expected ',' or '}'");
        }
    }

    JsonArray Array()
    {
        var a = new JsonArray();
        _i++;
        while (true)
        {
            Skip();
            if (_s[_i] == ']')
            {
                _i++;
                return a;
            }
            a.Add(Value());
            Skip();
            if (_s[_i] == ',')
                _i++;
            else if (_s[_i] != ']')
                throw Error("expected ',' or ']'");
        }
    }

    string String()
    {
        char q = _s[_i++];
        var sb = new StringBuilder();
        while (_s[_i] != q)
        {
            char c = _s[_i++];
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }
            char e = _s[_i++];
            switch (e)
            {
                case 'n':
                    sb.Append('\n');
                    break;
                case 't':
                    sb.Append('\t');
                    break;
                case 'r':
                    sb.Append('\r');
                    break;
                case 'u':
                    sb.Append((char)Convert.ToInt32(_s.Substring(_i, 4), 16));
                    _i += 4;
                    break;
                default:
                    sb.Append(e);
                    break;
            }
        }
        _i++;
        return sb.ToString();
    }

    double Number()
    {
        int start = _i;
        while (_i < _s.Length && (char.IsDigit(_s[_i]) || _s[_i] is '.' or 'e' or 'E' or '-' or '+'))
            _i++;
        string text = _s[start.._i];
        return double.Parse(
            text.StartsWith('.') ? "0" + text
                : text.StartsWith("-.") ? "-0" + text[1..]
                : text,
            CultureInfo.InvariantCulture
        );
    }

    string Identifier()
    {
        int start = _i;
        while (_i < _s.Length && (char.IsLetterOrDigit(_s[_i]) || _s[_i] is '_' or '$'))
            _i++;
        if (_i == start)
            throw Error($"unexpected character '{_s[_i]}'");
        return _s[start.._i];
    }

    void Skip()
    {
        while (_i < _s.Length && char.IsWhiteSpace(_s[_i]))
            _i++;
    }

    InvalidDataException Error(string what) => new($"JavaScript literal at offset {_i}: {what}");
}
