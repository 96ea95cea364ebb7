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

    /// <summary>Decodes one pickle from <paramref name="stream"/> (up to its STOP).</summary>
    public object? Load(Stream stream)
    {
        long start = stream.CanSeek ? stream.Position : 0;
        try
        {
            return new Machine(this, stream).Run();
        }
        catch (EndOfStreamException)
        {
            throw Malformed("unexpected end of data (a truncated file?)");
        }
        // A damaged pickle can make an allowed global's reconstruction fail in any way: one typed error naming the file.
        // Errors raised inside reconstruction code that does not know the file (a numpy array's state, say) get it too.
        catch (Exception e)
            when (e is not (PickleSecurityException or OperationCanceledException)
                && !e.Message.StartsWith(_name, StringComparison.Ordinal)
            )
        {
            string at = stream.CanSeek ? $" near byte {stream.Position - start}" : "";
            throw new InvalidDataException($"{_name}: malformed pickle{at}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>The pickle virtual machine's state while one stream is read: the stack, the marks and the
    /// memo.</summary>
    sealed class Machine(PickleReader owner, Stream stream)
    {
        readonly BinaryReader _r = new(stream, Encoding.UTF8, leaveOpen: true);
        readonly List<object?> _stack = [];
        readonly Stack<int> _marks = new();
        readonly Dictionary<long, object?> _memo = [];

        public object? Run()
        {
            while (true)
            {
                int op = stream.ReadByte();
                if (op < 0)
                    throw owner.Malformed("unexpected end of data (no STOP)");
                if ((PickleOpcode)op == PickleOpcode.Stop)
                    return _stack.Count == 1 ? _stack[0] : Pop();
                if (
                    !(
                        Control((PickleOpcode)op)
                        || Scalar((PickleOpcode)op)
                        || Container((PickleOpcode)op)
                        || Memo((PickleOpcode)op)
                        || Object((PickleOpcode)op)
                    )
                )
                    throw owner.Malformed($"unknown opcode 0x{op:x2} at byte {stream.Position - 1}");
            }
        }

        bool Control(PickleOpcode op)
        {
            switch (op)
            {
                case PickleOpcode.Proto:
                    _r.ReadByte();
                    break;
                case PickleOpcode.Frame:
                    _r.ReadInt64();
                    break;
                case PickleOpcode.Mark:
                    _marks.Push(_stack.Count);
                    break;
                case PickleOpcode.Pop:
                    Pop();
                    break;
                case PickleOpcode.PopMark:
                    PopMark();
                    break;
                case PickleOpcode.Dup:
                    Push(Peek());
                    break;
                default:
                    return false;
            }
            return true;
        }

        bool Scalar(PickleOpcode op)
        {
            object? value = op switch
            {
                PickleOpcode.None => null,
                PickleOpcode.NewTrue => true,
                PickleOpcode.NewFalse => false,
                PickleOpcode.Int => Line() switch
                {
                    "01" => true,
                    "00" => false,
                    var s => ParseInteger(s),
                },
                PickleOpcode.BinInt => (long)_r.ReadInt32(),
                PickleOpcode.BinInt1 => (long)_r.ReadByte(),
                PickleOpcode.BinInt2 => (long)_r.ReadUInt16(),
                PickleOpcode.Long => ParseInteger(Line().TrimEnd('L')),
                PickleOpcode.Long1 => DecodeLong(Bytes(_r.ReadByte())),
                PickleOpcode.Long4 => DecodeLong(Bytes(_r.ReadInt32())),
                PickleOpcode.Float => double.Parse(Line(), CultureInfo.InvariantCulture),
                PickleOpcode.BinFloat => BinaryPrimitives.ReadDoubleBigEndian(Bytes(8)),
                PickleOpcode.String => UnquoteString(Line()),
                PickleOpcode.BinString => Encoding.Latin1.GetString(Bytes(_r.ReadInt32())),
                PickleOpcode.ShortBinString => Encoding.Latin1.GetString(Bytes(_r.ReadByte())),
                PickleOpcode.Unicode => Unescape(Line()),
                PickleOpcode.BinUnicode => Encoding.UTF8.GetString(Bytes(_r.ReadUInt32())),
                PickleOpcode.ShortBinUnicode => Encoding.UTF8.GetString(Bytes(_r.ReadByte())),
                PickleOpcode.BinUnicode8 => Encoding.UTF8.GetString(Bytes(_r.ReadInt64())),
                PickleOpcode.BinBytes => Bytes(_r.ReadUInt32()),
                PickleOpcode.ShortBinBytes => Bytes(_r.ReadByte()),
                PickleOpcode.BinBytes8 or PickleOpcode.ByteArray8 => Bytes(_r.ReadInt64()),
                _ => NotMine,
            };
            if (ReferenceEquals(value, NotMine))
                return false;
            Push(value);
            return true;
        }

        bool Container(PickleOpcode op)
        {
            switch (op)
            {
                case PickleOpcode.EmptyTuple:
                    Push(new PyTuple([]));
                    break;
                case PickleOpcode.Tuple:
                    Push(new PyTuple(PopMark().ToArray()));
                    break;
                case PickleOpcode.Tuple1:
                    Push(new PyTuple(PopN(1)));
                    break;
                case PickleOpcode.Tuple2:
                    Push(new PyTuple(PopN(2)));
                    break;
                case PickleOpcode.Tuple3:
                    Push(new PyTuple(PopN(3)));
                    break;
                case PickleOpcode.EmptyList:
                    Push(new List<object?>());
                    break;
                case PickleOpcode.List:
                    Push(PopMark());
                    break;
                case PickleOpcode.Append:
                {
                    var v = Pop();
                    AsList(Peek()).Add(v);
                    break;
                }
                case PickleOpcode.Appends:
                {
                    var items = PopMark();
                    AsList(Peek()).AddRange(items);
                    break;
                }
                case PickleOpcode.EmptyDict:
                    Push(new PyDict());
                    break;
                case PickleOpcode.Dict:
                {
                    var d = new PyDict();
                    AddPairs(d, PopMark());
                    Push(d);
                    break;
                }
                case PickleOpcode.SetItem:
                {
                    var v = Pop();
                    var k = Pop();
                    AsDict(Peek())[Key(k)] = v;
                    break;
                }
                case PickleOpcode.SetItems:
                {
                    var items = PopMark();
                    AddPairs(AsDict(Peek()), items);
                    break;
                }
                case PickleOpcode.EmptySet:
                    Push(new HashSet<object?>());
                    break;
                case PickleOpcode.AddItems:
                {
                    var items = PopMark();
                    if (Peek() is not HashSet<object?> set)
                        throw owner.Malformed("ADDITEMS on a non-set");
                    foreach (var i in items)
                        set.Add(i);
                    break;
                }
                case PickleOpcode.FrozenSet:
                    Push(new HashSet<object?>(PopMark()));
                    break;
                default:
                    return false;
            }
            return true;
        }

        bool Memo(PickleOpcode op)
        {
            switch (op)
            {
                case PickleOpcode.Get:
                    Push(MemoGet(ParseInteger(Line())));
                    break;
                case PickleOpcode.BinGet:
                    Push(MemoGet(_r.ReadByte()));
                    break;
                case PickleOpcode.LongBinGet:
                    Push(MemoGet(_r.ReadUInt32()));
                    break;
                case PickleOpcode.Put:
                    _memo[Convert.ToInt64(ParseInteger(Line()))] = Peek();
                    break;
                case PickleOpcode.BinPut:
                    _memo[_r.ReadByte()] = Peek();
                    break;
                case PickleOpcode.LongBinPut:
                    _memo[_r.ReadUInt32()] = Peek();
                    break;
                case PickleOpcode.Memoize:
                    _memo[_memo.Count] = Peek();
                    break;
                default:
                    return false;
            }
            return true;
        }

        bool Object(PickleOpcode op)
        {
            switch (op)
            {
                case PickleOpcode.Global:
                {
                    string module = Line(),
                        name = Line();
                    Push(owner.ResolveGlobal(module, name));
                    break;
                }
                case PickleOpcode.StackGlobal:
                {
                    var name = Pop() as string;
                    var module = Pop() as string;
                    if (name is null || module is null)
                        throw owner.Malformed("STACK_GLOBAL without module and name strings");
                    Push(owner.ResolveGlobal(module, name));
                    break;
                }
                case PickleOpcode.Reduce:
                {
                    var args = Pop() as PyTuple ?? throw owner.Malformed("REDUCE arguments are not a tuple");
                    var g =
                        Pop() as PickleGlobal
                        ?? throw owner.Malformed("REDUCE on something that is not an allowed global");
                    Push((g.Call ?? throw owner.Refused(g, "called"))(args.Items));
                    break;
                }
                case PickleOpcode.NewObj or PickleOpcode.NewObjEx:
                {
                    string what = op == PickleOpcode.NewObj ? "NEWOBJ" : "NEWOBJ_EX";
                    if (op == PickleOpcode.NewObjEx)
                        Pop(); // kwargs
                    var args = Pop() as PyTuple ?? throw owner.Malformed($"{what} arguments are not a tuple");
                    var g =
                        Pop() as PickleGlobal
                        ?? throw owner.Malformed($"{what} on something that is not an allowed class");
                    Push((g.New ?? throw owner.Refused(g, "instantiated"))(args.Items));
                    break;
                }
                case PickleOpcode.Build:
                {
                    var state = Pop();
                    switch (Peek())
                    {
                        case IPickleBuildable b:
                            b.SetState(state);
                            break;
                        case PyObject o:
                            o.State = state;
                            break;
                        case PyDict d:
                            d.State = state;
                            break;
                        case var other:
                            throw owner.Malformed($"BUILD on {other?.GetType().Name ?? "None"}");
                    }
                    break;
                }
                case PickleOpcode.PersId:
                    Push(owner.Persistent(Line()));
                    break;
                case PickleOpcode.BinPersId:
                    Push(owner.Persistent(Pop()));
                    break;
                case PickleOpcode.Inst or PickleOpcode.Obj:
                    throw new PickleSecurityException(
                        $"{owner._name}: old-style class instantiation (INST/OBJ) is not accepted"
                    );
                case PickleOpcode.Ext1 or PickleOpcode.Ext2 or PickleOpcode.Ext4:
                    throw new PickleSecurityException(
                        $"{owner._name}: the pickle extension registry (EXT) is not accepted"
                    );
                default:
                    return false;
            }
            return true;
        }

        static readonly object NotMine = new();

        void Push(object? value) => _stack.Add(value);

        object? Pop()
        {
            if (_stack.Count == 0)
                throw owner.Malformed("stack underflow");
            var v = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            return v;
        }

        /// <summary>The top <paramref name="n"/> items, in stack order.</summary>
        object?[] PopN(int n)
        {
            var items = new object?[n];
            for (int i = n - 1; i >= 0; i--)
                items[i] = Pop();
            return items;
        }

        object? Peek() => _stack.Count > 0 ? _stack[^1] : throw owner.Malformed("stack underflow");

        List<object?> PopMark()
        {
            if (_marks.Count == 0)
                throw owner.Malformed("missing MARK");
            int m = _marks.Pop();
            var items = _stack.GetRange(m, _stack.Count - m);
            _stack.RemoveRange(m, _stack.Count - m);
            return items;
        }

        static void AddPairs(PyDict d, List<object?> items)
        {
            for (int i = 0; i + 1 < items.Count; i += 2)
                d[Key(items[i])] = items[i + 1];
        }

        string Line()
        {
            var sb = new StringBuilder();
            while (true)
            {
                int b = stream.ReadByte();
                if (b < 0)
                    throw owner.Malformed("unexpected end of data");
                if (b == '\n')
                    return sb.ToString();
                sb.Append((char)b);
            }
        }

        byte[] Bytes(long n)
        {
            if (n < 0 || n > Array.MaxLength)
                throw owner.Malformed($"invalid length {n}");
            // A damaged length can claim gigabytes: never allocate more than the data that is there.
            if (stream.CanSeek && n > stream.Length - stream.Position)
                throw owner.Malformed(
                    $"a string or bytes of {n} bytes, more than the {stream.Length - stream.Position} left"
                );
            if (stream.CanSeek || n <= Chunk)
            {
                var b = _r.ReadBytes((int)n);
                if (b.Length != n)
                    throw owner.Malformed("unexpected end of data");
                return b;
            }
            using var buffer = new MemoryStream();
            var chunk = new byte[Chunk];
            for (long left = n; left > 0; )
            {
                int got = _r.Read(chunk, 0, (int)Math.Min(Chunk, left));
                if (got == 0)
                    throw owner.Malformed("unexpected end of data");
                buffer.Write(chunk, 0, got);
                left -= got;
            }
            return buffer.ToArray();
        }

        const int Chunk = 1 << 20;

        object MemoGet(object key)
        {
            long k = Convert.ToInt64(key, CultureInfo.InvariantCulture);
            return _memo.TryGetValue(k, out var v) ? v! : throw owner.Malformed($"memo key {k} not found");
        }

        List<object?> AsList(object? o) =>
            o as List<object?> ?? throw owner.Malformed($"APPEND to {o?.GetType().Name ?? "None"}");

        PyDict AsDict(object? o) =>
            o switch
            {
                PyDict d => d,
                PyObject p => p.State as PyDict ?? (PyDict)(p.State = new PyDict()),
                _ => throw owner.Malformed($"SETITEM on {o?.GetType().Name ?? "None"}"),
            };
    }

    object? Persistent(object? pid) =>
        _persistentLoad is null
            ? throw new PickleSecurityException($"{_name}: unexpected persistent reference {pid}")
            : _persistentLoad(pid);

    PickleGlobal ResolveGlobal(string module, string name)
    {
        if (_globals.TryGetValue((module, name), out var g))
            return g;
        throw new PickleSecurityException(
            $"{_name}: refuses '{module}.{name}': this file would need Python code or an object type that is not a tensor, an array or a plain container (nothing in it was executed)"
        );
    }

    PickleSecurityException Refused(PickleGlobal g, string how) => new($"{_name}: '{g}' may not be {how} here");

    InvalidDataException Malformed(string what) => new($"{_name}: malformed pickle: {what}");

    static object Key(object? k) => k ?? "None";

    static object ParseInteger(string s)
    {
        if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
            return l;
        return BigInteger.Parse(s, CultureInfo.InvariantCulture);
    }

    static object DecodeLong(byte[] bytes)
    {
        if (bytes.Length == 0)
            return 0L;
        var big = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return big >= long.MinValue && big <= long.MaxValue ? (long)big : big;
    }

    static string UnquoteString(string s)
    {
        s = s.Trim();
        if (s.Length >= 2 && (s[0] == '\'' || s[0] == '"') && s[^1] == s[0])
            s = s[1..^1];
        return Unescape(s);
    }

    static string Unescape(string s) => s.Contains('\\') ? System.Text.RegularExpressions.Regex.Unescape(s) : s;
}
