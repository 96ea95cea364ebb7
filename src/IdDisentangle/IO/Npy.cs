using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.IO;

/// <summary>A file that is not a valid .npy array, or holds a type we do not read; the message names the
/// file.</summary>
internal sealed class NpyFormatException(string message) : IOException(message);

/// <summary>The header of a .npy file: element type, byte order, memory order and shape.</summary>
internal sealed record NpyHeader(
    string Descr,
    ScalarType DType,
    bool BigEndian,
    bool FortranOrder,
    long[] Shape,
    int MajorVersion,
    long DataOffset
)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// NumPy's .npy format (versions 1, 2 and 3), read into and written from TorchSharp tensors on the CPU.
/// Float32, float16, float64, uint8, int8, int16, int32, int64 and bool; either byte order and either memory
/// order on read; little-endian C order on write.
/// </summary>
internal static partial class Npy
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    static readonly (string Code, ScalarType Type, int Size)[] Types =
    [
        ("f4", ScalarType.Float32, 4),
        ("f2", ScalarType.Float16, 2),
        ("f8", ScalarType.Float64, 8),
        ("u1", ScalarType.Byte, 1),
        ("i1", ScalarType.Int8, 1),
        ("i2", ScalarType.Int16, 2),
        ("i4", ScalarType.Int32, 4),
        ("i8", ScalarType.Int64, 8),
        ("b1", ScalarType.Bool, 1),
    ];

    public static Tensor Read(string path)
    {
        using var fs = OpenRead(path);
        return Read(fs, path);
    }

    public static NpyHeader ReadHeader(string path)
    {
        using var fs = OpenRead(path);
        return ReadHeader(fs, path);
    }

    static FileStream OpenRead(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such .npy file", path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    /// <summary>Reads one array from <paramref name="stream"/>; <paramref name="name"/> is used in error
    /// messages.</summary>
    public static Tensor Read(Stream stream, string name)
    {
        var h = ReadHeader(stream, name);
        int size = Types.First(t => t.Type == h.DType).Size;
        long nbytes = h.ElementCount * size;
        if (nbytes > Array.MaxLength)
            throw new NpyFormatException(
                $"{name}: array of {nbytes} bytes is larger than this reader supports (2 GiB)"
            );
        var data = new byte[nbytes];
        int got = ReadUpTo(stream, data);
        if (got < nbytes)
            throw new NpyFormatException($"{name}: truncated .npy data ({got} of {nbytes} bytes)");
        if (h.BigEndian && size > 1)
            SwapBytes(data, size);

        long[] storedShape = h.FortranOrder ? h.Shape.Reverse().ToArray() : h.Shape;
        var t = torch.empty(storedShape, h.DType);
        if (nbytes > 0)
            t.bytes = data;
        if (h.FortranOrder && h.Shape.Length > 1)
        {
            var perm = Enumerable.Range(0, h.Shape.Length).Reverse().Select(i => (long)i).ToArray();
            using var stored = t;
            t = stored.permute(perm).contiguous();
        }
        return t;
    }

    public static NpyHeader ReadHeader(Stream stream, string name)
    {
        Span<byte> pre = stackalloc byte[10];
        if (ReadUpTo(stream, pre) < 10 || !pre[..6].SequenceEqual(Magic))
            throw new NpyFormatException($"{name}: not a .npy file (missing the \\x93NUMPY magic)");
        int major = pre[6];
        long headerLen;
        int preamble;
        switch (major)
        {
            case 1:
                headerLen = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..10]);
                preamble = 10;
                break;
            case 2:
            case 3:
                Span<byte> two = stackalloc byte[2];
                if (ReadUpTo(stream, two) < 2)
                    throw new NpyFormatException($"{name}: truncated .npy header");
                headerLen = BinaryPrimitives.ReadUInt32LittleEndian([pre[8], pre[9], two[0], two[1]]);
                preamble = 12;
                break;
            default:
                throw new NpyFormatException(
                    $"{name}: .npy format version {major}.{pre[7]} is not supported (1, 2 and 3 are)"
                );
        }
        if (headerLen > 1 << 24)
            throw new NpyFormatException($"{name}: implausible .npy header length {headerLen}");
        var hb = new byte[headerLen];
        if (ReadUpTo(stream, hb) < headerLen)
            throw new NpyFormatException($"{name}: truncated .npy header");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(hb);

        var descr = DescrRegex().Match(header);
        var fortran = FortranRegex().Match(header);
        var shape = ShapeRegex().Match(header);
        if (!descr.Success || !fortran.Success || !shape.Success)
            throw new NpyFormatException($"{name}: malformed .npy header: {header.Trim()}");

        string d = descr.Groups[1].Value;
        if (d.Length < 3)
            throw new NpyFormatException($"{name}: unsupported dtype '{d}'");
        char order = d[0];
        string code = d[1..];
        var match = Types.FirstOrDefault(t => t.Code == code);
        if (match.Code is null || (order != '<' && order != '>' && order != '|' && order != '='))
            throw new NpyFormatException(
                $"{name}: unsupported dtype '{d}' (supported: float32, float16, float64, uint8, int8, int16, int32, int64, bool)"
            );
        bool bigEndian = order == '>' || (order == '=' && !BitConverter.IsLittleEndian);

        long[] dims = shape
            .Groups[1]
            .Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s =>
                long.TryParse(s.TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out var v)
                    ? v
                    : throw new NpyFormatException($"{name}: malformed shape '{shape.Groups[1].Value}'")
            )
            .ToArray();
        return new NpyHeader(
            d,
            match.Type,
            bigEndian,
            fortran.Groups[1].Value == "True",
            dims,
            major,
            preamble + headerLen
        );
    }

    public static void Write(string path, Tensor tensor, int version = 0) =>
        AtomicFile.Write(path, s => Write(s, tensor, version));

    /// <summary>Writes a tensor as a C-order little-endian .npy array. <paramref name="version"/> 0 picks 1.0 unless
    /// the header needs 2.0.</summary>
    public static void Write(Stream stream, Tensor tensor, int version = 0)
    {
        var match = Types.FirstOrDefault(t => t.Type == tensor.dtype);
        if (match.Code is null)
            throw new ArgumentException($"Cannot write a {tensor.dtype} tensor as .npy");
        string descr = (match.Size == 1 ? "|" : "<") + match.Code;
        string shape = tensor.shape.Length switch
        {
            0 => "()",
            1 => $"({tensor.shape[0]},)",
            _ => "(" + string.Join(", ", tensor.shape) + ")",
        };
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        if (version == 0)
            version = dict.Length + 1 + 10 < 65536 ? 1 : 2;
        if (version is not (1 or 2))
            throw new ArgumentOutOfRangeException(nameof(version), "npy version must be 1 or 2");
        int preamble = version == 1 ? 10 : 12;
        int total = preamble + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        string header = dict + new string(' ', padded - total) + "\n";

        stream.Write(Magic);
        stream.WriteByte((byte)version);
        stream.WriteByte(0);
        Span<byte> len = stackalloc byte[4];
        if (version == 1)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
            stream.Write(len[..2]);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)header.Length);
            stream.Write(len);
        }
        stream.Write(Encoding.Latin1.GetBytes(header));
        if (tensor.numel() == 0)
            return;
        using var c = tensor.detach().cpu().contiguous();
        var bytes = c.bytes;
        if (!BitConverter.IsLittleEndian && match.Size > 1)
        {
            var copy = bytes.ToArray();
            SwapBytes(copy, match.Size);
            stream.Write(copy);
        }
        else
            stream.Write(bytes);
    }

    static int ReadUpTo(Stream s, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = s.Read(buffer[total..]);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }

    static void SwapBytes(byte[] data, int size)
    {
        for (int i = 0; i + size <= data.Length; i += size)
            Array.Reverse(data, i, size);
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrRegex();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranRegex();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRegex();
}
