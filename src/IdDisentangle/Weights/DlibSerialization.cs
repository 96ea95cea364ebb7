using System.Globalization;

namespace IdDisentangle.Weights;

/// <summary>
/// Reads dlib's portable serialization format (dlib/serialize.h): integers as a control byte (byte count in the low
/// nibble, sign in the high bit) followed by little-endian bytes; floating point as an integer mantissa and exponent
/// (older files: ASCII text ending in a space); std::vector as its size then its items; column matrices as their
/// (negated, in the newer format) row and column counts then the values row by row.
/// </summary>
internal sealed class DlibReader(byte[] data, string source)
{
    int _pos;

    public string Source { get; } = source;
    public int Position => _pos;
    public bool AtEnd => _pos >= data.Length;

    public long ReadInt64()
    {
        byte control = Next("an integer");
        int size = control & 0x0F;
        if (size is 0 or > 8)
            throw Error($"invalid integer control byte 0x{control:x2}");
        ulong value = ReadLittleEndian(size);
        return (control & 0x80) != 0 ? -(long)value : (long)value;
    }

    public ulong ReadUInt64()
    {
        byte control = Next("an unsigned integer");
        int size = control & 0x8F;
        if (size is 0 or > 8)
            throw Error($"invalid unsigned integer control byte 0x{control:x2}");
        return ReadLittleEndian(size);
    }

    /// <summary>An unsigned integer used as a count or an index, checked against <paramref name="limit"/>.</summary>
    public int ReadCount(string what, long limit = int.MaxValue)
    {
        ulong n = ReadUInt64();
        if (n > (ulong)limit)
            throw Error($"{what} {n} is out of range (at most {limit})");
        return (int)n;
    }

    public float ReadSingle()
    {
        if (_pos >= data.Length)
            throw Error("unexpected end of file reading a floating point number");
        // The binary form starts with an integer control byte, whose bits 0x70 are always clear; ASCII digits are not.
        if ((data[_pos] & 0x70) != 0)
            return ReadAsciiSingle();
        long mantissa = ReadInt64();
        long exponent = ReadInt64();
        return exponent switch
        {
            32000 => float.PositiveInfinity,
            32001 => float.NegativeInfinity,
            32002 => float.NaN,
            _ => MathF.ScaleB(mantissa, (int)exponent),
        };
    }

    float ReadAsciiSingle()
    {
        int end = Array.IndexOf(data, (byte)' ', _pos);
        if (end < 0)
            throw Error("unterminated ASCII floating point number");
        string text = System.Text.Encoding.ASCII.GetString(data, _pos, end - _pos);
        _pos = end + 1;
        return text switch
        {
            "inf" => float.PositiveInfinity,
            "ninf" => float.NegativeInfinity,
            "NaN" => float.NaN,
            _ => float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float v)
                ? v
                : throw Error($"invalid ASCII floating point number '{text}'"),
        };
    }

    /// <summary>A dlib::matrix&lt;float,0,1&gt; (column vector).</summary>
    public float[] ReadColumnVector(string what)
    {
        long rows = Math.Abs(ReadInt64()),
            cols = Math.Abs(ReadInt64());
        if (cols != 1 || rows > 1 << 24)
            throw Error($"{what}: expected a column vector, found a {rows}x{cols} matrix");
        var v = new float[rows];
        for (int i = 0; i < v.Length; i++)
            v[i] = ReadSingle();
        return v;
    }

    ulong ReadLittleEndian(int size)
    {
        if (_pos + size > data.Length)
            throw Error("unexpected end of file");
        ulong value = 0;
        for (int i = size - 1; i >= 0; i--)
            value = (value << 8) | data[_pos + i];
        _pos += size;
        return value;
    }

    byte Next(string what)
    {
        if (_pos >= data.Length)
            throw Error($"unexpected end of file reading {what}");
        return data[_pos++];
    }

    public InvalidDataException Error(string message) =>
        new($"{Source}: {message} (byte {_pos}); not a dlib file of the expected kind, or damaged");
}
