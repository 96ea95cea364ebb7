using System.Buffers.Binary;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights.Pickle;

/// <summary>
/// A numpy dtype as pickled: <c>numpy.dtype('f4', False, True)</c> and a BUILD state whose second item is the
/// byte order. Only plain numeric and boolean types are accepted.
/// </summary>
internal sealed class NumpyDType(string code) : IPickleBuildable
{
    public string Code { get; } = code;
    public char ByteOrder { get; private set; } = '=';

    public void SetState(object? state)
    {
        if (state is PyTuple { Count: >= 2 } t && t[1] is string order && order.Length == 1)
            ByteOrder = order[0];
    }

    public int ItemSize =>
        Code.Length > 1 && int.TryParse(Code[1..], out int n)
            ? n
            : Code switch
            {
                "?" or "b1" => 1,
                _ => 0,
            };

    public override string ToString() => $"{ByteOrder}{Code}";
}

/// <summary>
/// A numpy array as pickled: <c>numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')</c>, then BUILD with
/// (version, shape, dtype, is_fortran, raw bytes). Object arrays (whose data would be more pickled objects) are
/// refused.
/// </summary>
internal sealed class NumpyArray : IPickleBuildable
{
    public long[] Shape { get; private set; } = [];
    public NumpyDType DType { get; private set; } = new("f8");
    public bool FortranOrder { get; private set; }
    public byte[] Data { get; private set; } = [];

    public void SetState(object? state)
    {
        if (state is not PyTuple { Count: 5 } t)
            throw new InvalidDataException("numpy array state is not (version, shape, dtype, fortran, data)");
        Shape = (t[1] as PyTuple ?? throw new InvalidDataException("numpy array shape is not a tuple"))
            .Items.Select(Convert.ToInt64)
            .ToArray();
        DType = t[2] as NumpyDType ?? throw new InvalidDataException("numpy array without a dtype");
        FortranOrder = t[3] is true;
        Data = t[4] switch
        {
            byte[] b => b,
            string s => s.Select(c => (byte)c).ToArray(), // protocol 2 pickles carry bytes as latin-1 strings
            _ => throw new PickleSecurityException($"numpy array of dtype {DType}: object arrays are not accepted"),
        };
    }

    internal static NumpyArray Scalar(NumpyDType dtype, byte[] data)
    {
        var a = new NumpyArray();
        a.SetState(new PyTuple([1L, new PyTuple([]), dtype, false, data]));
        return a;
    }

    /// <summary>The array as a float32 tensor (numeric types converted), C order.</summary>
    public Tensor ToTensor()
    {
        long count = Shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[count];
        bool big = DType.ByteOrder == '>';
        int size = DType.ItemSize;
        if (Data.Length != count * size)
            throw new InvalidDataException(
                $"numpy array [{string.Join(",", Shape)}] of {DType}: {Data.Length} bytes of data, expected {count * size}"
            );
        var span = Data.AsSpan();
        for (long i = 0; i < count; i++)
        {
            var item = span.Slice((int)(i * size), size);
            values[i] = (DType.Code[0], size) switch
            {
                ('f', 4) => big
                    ? BinaryPrimitives.ReadSingleBigEndian(item)
                    : BinaryPrimitives.ReadSingleLittleEndian(item),
                ('f', 8) => (float)(
                    big ? BinaryPrimitives.ReadDoubleBigEndian(item) : BinaryPrimitives.ReadDoubleLittleEndian(item)
                ),
                ('f', 2) => (float)(
                    big ? BinaryPrimitives.ReadHalfBigEndian(item) : BinaryPrimitives.ReadHalfLittleEndian(item)
                ),
                ('i', 4) => big
                    ? BinaryPrimitives.ReadInt32BigEndian(item)
                    : BinaryPrimitives.ReadInt32LittleEndian(item),
                ('i', 8) => big
                    ? BinaryPrimitives.ReadInt64BigEndian(item)
                    : BinaryPrimitives.ReadInt64LittleEndian(item),
                ('u', 1) or ('b', 1) => item[0],
                ('i', 1) => (sbyte)item[0],
                _ => throw new InvalidDataException($"numpy dtype {DType} is not supported"),
            };
        }
        var shape = FortranOrder ? Shape.Reverse().ToArray() : Shape;
        var t = torch.tensor(values).reshape(shape);
        return FortranOrder
            ? t.permute(Enumerable.Range(0, Shape.Length).Reverse().Select(i => (long)i).ToArray()).contiguous()
            : t;
    }

    public override string ToString() => $"ndarray[{string.Join(",", Shape)}] {DType}";
}

/// <summary>The globals a pickle of numpy arrays uses (numpy 1 and 2 module paths).</summary>
internal static class NumpyPickle
{
    static readonly object NdarrayTag = new();

    public static IEnumerable<PickleGlobal> Globals()
    {
        foreach (string core in new[] { "numpy.core.multiarray", "numpy._core.multiarray" })
        {
            yield return new PickleGlobal
            {
                Module = core,
                Name = "_reconstruct",
                Call = a =>
                    a.Length > 0 && a[0] is PickleGlobal { Tag: var tag } && ReferenceEquals(tag, NdarrayTag)
                        ? new NumpyArray()
                        : throw new PickleSecurityException(
                            $"{core}._reconstruct of something other than numpy.ndarray"
                        ),
            };
            yield return new PickleGlobal
            {
                Module = core,
                Name = "scalar",
                Call = a =>
                    a.Length == 2 && a[0] is NumpyDType d
                        ? NumpyArray.Scalar(
                            d,
                            a[1] switch
                            {
                                byte[] b => b,
                                string s => s.Select(c => (byte)c).ToArray(),
                                _ => throw new PickleSecurityException("numpy scalar of an object type"),
                            }
                        )
                        : throw new InvalidDataException("numpy scalar without dtype and bytes"),
            };
        }
        yield return new PickleGlobal
        {
            Module = "numpy",
            Name = "ndarray",
            Tag = NdarrayTag,
        };
        yield return new PickleGlobal
        {
            Module = "numpy",
            Name = "dtype",
            Call = a =>
                a.Length > 0 && a[0] is string code && code is not ("O8" or "O4" or "O")
                    ? new NumpyDType(code)
                    : throw new PickleSecurityException(
                        $"numpy dtype '{(a.Length > 0 ? a[0] : "")}' is not a plain numeric type"
                    ),
        };
    }
}
