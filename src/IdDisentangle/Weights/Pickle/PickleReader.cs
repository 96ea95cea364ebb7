using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace IdDisentangle.Weights.Pickle;

/// <summary>
/// A restricted reader of Python pickles (protocols 0-5). It is a data decoder, not an interpreter: a global
/// (class or function) named by the pickle is looked up in the caller's allow-list and anything else is refused
/// with an error naming it, so a malicious file cannot make it run code or build arbitrary objects. Containers
/// become <see cref="PyDict"/>, <see cref="List{T}"/>, <see cref="PyTuple"/>, <see cref="HashSet{T}"/>; scalars
/// become bool, long, <see cref="BigInteger"/>, double, string and byte[].
/// </summary>
internal sealed class PickleReader
{
    readonly Dictionary<(string, string), PickleGlobal> _globals;
    readonly Func<object?, object?>? _persistentLoad;
    readonly string _name;

    /// <param name="name">The file's name, for error messages.</param>
    /// <param name="globals">The globals this file may use.</param>
    /// <param name="persistentLoad">Resolves persistent ids (PyTorch storages); null refuses them.</param>
    public PickleReader(string name, IEnumerable<PickleGlobal> globals, Func<object?, object?>? persistentLoad = null)
    {
        _name = name;
        _globals = globals.ToDictionary(g => (g.Module, g.Name));
        _persistentLoad = persistentLoad;
    }

    static readonly object Mark = new();

    public object? Load(Stream stream)
    {
        var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        var stack = new List<object?>();
        var marks = new Stack<int>();
        var memo = new Dictionary<long, object?>();

        object? Pop()
        {
            if (stack.Count == 0) throw Malformed("stack underflow");
            var v = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return v;
        }
        object? Peek() => stack.Count > 0 ? stack[^1] : throw Malformed("stack underflow");
        List<object?> PopMark()
        {
            if (marks.Count == 0) throw Malformed("missing MARK");
            int m = marks.Pop();
            var items = stack.GetRange(m, stack.Count - m);
            stack.RemoveRange(m, stack.Count - m);
            return items;
        }
        string Line()
        {
            var sb = new StringBuilder();
            while (true)
            {
                int b = stream.ReadByte();
                if (b < 0) throw Malformed("unexpected end of data");
                if (b == '\n') return sb.ToString();
                sb.Append((char)b);
            }
        }
        byte[] Bytes(long n)
        {
            if (n < 0 || n > Array.MaxLength) throw Malformed($"invalid length {n}");
            var b = r.ReadBytes((int)n);
            if (b.Length != n) throw Malformed("unexpected end of data");
            return b;
        }

        while (true)
        {
            int op = stream.ReadByte();
            if (op < 0) throw Malformed("unexpected end of data (no STOP)");
            switch (op)
            {
                case 0x80: r.ReadByte(); break;                                   // PROTO
                case 0x95: r.ReadInt64(); break;                                  // FRAME
                case 0x2e: return stack.Count == 1 ? stack[0] : Pop();            // STOP
                case 0x28: marks.Push(stack.Count); break;                        // MARK
                case 0x30: Pop(); break;                                          // POP
                case 0x31: PopMark(); break;                                      // POP_MARK
                case 0x32: stack.Add(Peek()); break;                              // DUP
                case 0x4e: stack.Add(null); break;                                // NONE
                case 0x88: stack.Add(true); break;                                // NEWTRUE
                case 0x89: stack.Add(false); break;                               // NEWFALSE
                case 0x4a: stack.Add((long)r.ReadInt32()); break;                 // BININT
                case 0x4b: stack.Add((long)r.ReadByte()); break;                  // BININT1
                case 0x4d: stack.Add((long)r.ReadUInt16()); break;                // BININT2
                case 0x49:                                                        // INT
                {
                    string s = Line();
                    stack.Add(s == "01" ? true : s == "00" ? false : ParseInteger(s));
                    break;
                }
                case 0x4c: stack.Add(ParseInteger(Line().TrimEnd('L'))); break;   // LONG
                case 0x8a: stack.Add(DecodeLong(Bytes(r.ReadByte()))); break;     // LONG1
                case 0x8b: stack.Add(DecodeLong(Bytes(r.ReadInt32()))); break;    // LONG4
                case 0x46: stack.Add(double.Parse(Line(), CultureInfo.InvariantCulture)); break; // FLOAT
                case 0x47:                                                        // BINFLOAT (big-endian)
                    stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8)));
                    break;
                case 0x53: stack.Add(UnquoteString(Line())); break;               // STRING
                case 0x54: stack.Add(Encoding.Latin1.GetString(Bytes(r.ReadInt32()))); break; // BINSTRING
                case 0x55: stack.Add(Encoding.Latin1.GetString(Bytes(r.ReadByte()))); break;  // SHORT_BINSTRING
                case 0x56: stack.Add(Regex_Unescape(Line())); break;              // UNICODE
                case 0x58: stack.Add(Encoding.UTF8.GetString(Bytes(r.ReadUInt32()))); break;  // BINUNICODE
                case 0x8c: stack.Add(Encoding.UTF8.GetString(Bytes(r.ReadByte()))); break;    // SHORT_BINUNICODE
                case 0x8d: stack.Add(Encoding.UTF8.GetString(Bytes(r.ReadInt64()))); break;   // BINUNICODE8
                case 0x42: stack.Add(Bytes(r.ReadUInt32())); break;               // BINBYTES
                case 0x43: stack.Add(Bytes(r.ReadByte())); break;                 // SHORT_BINBYTES
                case 0x8e: stack.Add(Bytes(r.ReadInt64())); break;                // BINBYTES8
                case 0x96: stack.Add(Bytes(r.ReadInt64())); break;                // BYTEARRAY8
                case 0x29: stack.Add(new PyTuple([])); break;                     // EMPTY_TUPLE
                case 0x74: stack.Add(new PyTuple(PopMark().ToArray())); break;    // TUPLE
                case 0x85: stack.Add(new PyTuple([Pop()])); break;                // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new PyTuple([a, b])); break; }            // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new PyTuple([a, b, c])); break; } // TUPLE3
                case 0x5d: stack.Add(new List<object?>()); break;                 // EMPTY_LIST
                case 0x6c: stack.Add(PopMark()); break;                           // LIST
                case 0x61: { var v = Pop(); AsList(Peek()).Add(v); break; }      // APPEND
                case 0x65: { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
                case 0x7d: stack.Add(new PyDict()); break;                        // EMPTY_DICT
                case 0x64:                                                        // DICT
                {
                    var items = PopMark();
                    var d = new PyDict();
                    for (int i = 0; i + 1 < items.Count; i += 2) d[Key(items[i])] = items[i + 1];
                    stack.Add(d);
                    break;
                }
                case 0x73: { var v = Pop(); var k = Pop(); AsDict(Peek())[Key(k)] = v; break; } // SETITEM
                case 0x75:                                                        // SETITEMS
                {
                    var items = PopMark();
                    var d = AsDict(Peek());
                    for (int i = 0; i + 1 < items.Count; i += 2) d[Key(items[i])] = items[i + 1];
                    break;
                }
                case 0x8f: stack.Add(new HashSet<object?>()); break;              // EMPTY_SET
                case 0x90:                                                        // ADDITEMS
                {
                    var items = PopMark();
                    if (Peek() is not HashSet<object?> set) throw Malformed("ADDITEMS on a non-set");
                    foreach (var i in items) set.Add(i);
                    break;
                }
                case 0x91: stack.Add(new HashSet<object?>(PopMark())); break;     // FROZENSET
                case 0x67: stack.Add(MemoGet(memo, ParseInteger(Line()))); break; // GET
                case 0x68: stack.Add(MemoGet(memo, r.ReadByte())); break;         // BINGET
                case 0x6a: stack.Add(MemoGet(memo, r.ReadUInt32())); break;       // LONG_BINGET
                case 0x70: memo[Convert.ToInt64(ParseInteger(Line()))] = Peek(); break; // PUT
                case 0x71: memo[r.ReadByte()] = Peek(); break;                    // BINPUT
                case 0x72: memo[r.ReadUInt32()] = Peek(); break;                  // LONG_BINPUT
                case 0x94: memo[memo.Count] = Peek(); break;                      // MEMOIZE
                case 0x63:                                                        // GLOBAL
                {
                    string module = Line(), name = Line();
                    stack.Add(ResolveGlobal(module, name));
                    break;
                }
                case 0x93:                                                        // STACK_GLOBAL
                {
                    var name = Pop() as string; var module = Pop() as string;
                    if (name is null || module is null) throw Malformed("STACK_GLOBAL without module and name strings");
                    stack.Add(ResolveGlobal(module, name));
                    break;
                }
                case 0x52:                                                        // REDUCE
                {
                    var args = Pop() as PyTuple ?? throw Malformed("REDUCE arguments are not a tuple");
                    var g = Pop() as PickleGlobal ?? throw Malformed("REDUCE on something that is not an allowed global");
                    if (g.Call is null) throw Refused(g, "called");
                    stack.Add(g.Call(args.Items));
                    break;
                }
                case 0x81:                                                        // NEWOBJ
                {
                    var args = Pop() as PyTuple ?? throw Malformed("NEWOBJ arguments are not a tuple");
                    var g = Pop() as PickleGlobal ?? throw Malformed("NEWOBJ on something that is not an allowed class");
                    if (g.New is null) throw Refused(g, "instantiated");
                    stack.Add(g.New(args.Items));
                    break;
                }
                case 0x92:                                                        // NEWOBJ_EX
                {
                    Pop(); // kwargs
                    var args = Pop() as PyTuple ?? throw Malformed("NEWOBJ_EX arguments are not a tuple");
                    var g = Pop() as PickleGlobal ?? throw Malformed("NEWOBJ_EX on something that is not an allowed class");
                    if (g.New is null) throw Refused(g, "instantiated");
                    stack.Add(g.New(args.Items));
                    break;
                }
                case 0x62:                                                        // BUILD
                {
                    var state = Pop();
                    switch (Peek())
                    {
                        case IPickleBuildable b: b.SetState(state); break;
                        case PyObject o: o.State = state; break;
                        case PyDict d: d.State = state; break;
                        case var other: throw Malformed($"BUILD on {other?.GetType().Name ?? "None"}");
                    }
                    break;
                }
                case 0x50:                                                        // PERSID
                    stack.Add(Persistent(Line()));
                    break;
                case 0x51:                                                        // BINPERSID
                    stack.Add(Persistent(Pop()));
                    break;
                case 0x69 or 0x6f:                                                // INST, OBJ
                    throw new PickleSecurityException($"{_name}: old-style class instantiation (INST/OBJ) is not accepted");
                case 0x82 or 0x83 or 0x84:                                        // EXT1/2/4
                    throw new PickleSecurityException($"{_name}: the pickle extension registry (EXT) is not accepted");
                default:
                    throw Malformed($"unknown opcode 0x{op:x2} at byte {stream.Position - 1}");
            }
        }
    }

    object? Persistent(object? pid) =>
        _persistentLoad is null ? throw new PickleSecurityException($"{_name}: unexpected persistent reference {pid}") : _persistentLoad(pid);

    PickleGlobal ResolveGlobal(string module, string name)
    {
        if (_globals.TryGetValue((module, name), out var g)) return g;
        throw new PickleSecurityException(
            $"{_name}: refuses '{module}.{name}': this file would need Python code or an object type that is not a tensor, an array or a plain container (nothing in it was executed)");
    }

    PickleSecurityException Refused(PickleGlobal g, string how) =>
        new($"{_name}: '{g}' may not be {how} here");

    InvalidDataException Malformed(string what) => new($"{_name}: malformed pickle: {what}");

    object MemoGet(Dictionary<long, object?> memo, object key)
    {
        long k = Convert.ToInt64(key, CultureInfo.InvariantCulture);
        return memo.TryGetValue(k, out var v) ? v! : throw Malformed($"memo key {k} not found");
    }

    static object Key(object? k) => k ?? "None";

    List<object?> AsList(object? o) => o as List<object?> ?? throw Malformed($"APPEND to {o?.GetType().Name ?? "None"}");

    PyDict AsDict(object? o) => o switch
    {
        PyDict d => d,
        PyObject p => p.State as PyDict ?? (PyDict)(p.State = new PyDict()),
        _ => throw Malformed($"SETITEM on {o?.GetType().Name ?? "None"}"),
    };

    static object ParseInteger(string s)
    {
        if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return l;
        return BigInteger.Parse(s, CultureInfo.InvariantCulture);
    }

    static object DecodeLong(byte[] bytes)
    {
        if (bytes.Length == 0) return 0L;
        var big = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return big >= long.MinValue && big <= long.MaxValue ? (long)big : big;
    }

    static string UnquoteString(string s)
    {
        s = s.Trim();
        if (s.Length >= 2 && (s[0] == '\'' || s[0] == '"') && s[^1] == s[0]) s = s[1..^1];
        return Regex_Unescape(s);
    }

    static string Regex_Unescape(string s) =>
        s.Contains('\\') ? System.Text.RegularExpressions.Regex.Unescape(s) : s;
}
