namespace IdDisentangle.Tests.Fuzzing;

/// <summary>
/// Byte-level mutations of a file, deterministic for a given random source: bit flips, interesting bytes and
/// integers (sizes and counts are where readers trust their input), truncation, zeroed or 0xFF runs, chunks deleted,
/// duplicated or inserted, splices with another input, and for text formats tokens that JSON readers trip on. Offsets
/// favour the start of the file, where formats keep their headers.
/// </summary>
internal static class Mutator
{
    static readonly byte[] InterestingBytes = [0x00, 0x01, 0x7F, 0x80, 0xFF, (byte)'"', (byte)'{', (byte)'['];

    static readonly long[] InterestingIntegers =
    [
        0,
        1,
        -1,
        2,
        255,
        256,
        65535,
        65536,
        int.MaxValue,
        int.MinValue,
        uint.MaxValue,
        1L << 32,
        1L << 40,
        long.MaxValue,
        long.MinValue,
    ];

    static readonly string[] InterestingText =
    [
        "null",
        "[]",
        "{}",
        "-1",
        "0",
        "1e999",
        "-1e999",
        "99999999999999999999",
        "\"\"",
        "\"../../../etc/passwd\"",
        "/",
        "\\u0000",
        "true",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "\"float64\"",
        "\"uint16\"",
        "NaN",
        "2147483648",
    ];

    public static byte[] Mutate(byte[] input, IReadOnlyList<byte[]> corpus, Random rng, bool text)
    {
        var data = new List<byte>(input);
        int rounds = 1 + rng.Next(4);
        for (int r = 0; r < rounds; r++)
        {
            int kind = rng.Next(text ? 11 : 10);
            if (data.Count == 0)
                kind = 9;
            switch (kind)
            {
                case 0: // flip a bit
                {
                    int at = Offset(data.Count, rng);
                    data[at] ^= (byte)(1 << rng.Next(8));
                    break;
                }
                case 1: // an interesting byte
                    data[Offset(data.Count, rng)] = InterestingBytes[rng.Next(InterestingBytes.Length)];
                    break;
                case 2: // an interesting integer, 1, 2, 4 or 8 bytes, either byte order
                {
                    long value = InterestingIntegers[rng.Next(InterestingIntegers.Length)];
                    int width = 1 << rng.Next(4);
                    bool bigEndian = rng.Next(2) == 0;
                    int at = Offset(data.Count, rng);
                    for (int i = 0; i < width && at + i < data.Count; i++)
                    {
                        int shift = 8 * (bigEndian ? width - 1 - i : i);
                        data[at + i] = (byte)(value >> shift);
                    }
                    break;
                }
                case 3: // truncate
                {
                    int keep = rng.Next(data.Count);
                    data.RemoveRange(keep, data.Count - keep);
                    break;
                }
                case 4: // a run of zeros or 0xFF
                {
                    int at = Offset(data.Count, rng);
                    int n = Math.Min(1 + rng.Next(256), data.Count - at);
                    byte fill = rng.Next(2) == 0 ? (byte)0 : (byte)0xFF;
                    for (int i = 0; i < n; i++)
                        data[at + i] = fill;
                    break;
                }
                case 5: // delete a chunk
                {
                    int at = Offset(data.Count, rng);
                    data.RemoveRange(at, Math.Min(1 + rng.Next(64), data.Count - at));
                    break;
                }
                case 6: // duplicate a chunk elsewhere
                {
                    int from = rng.Next(data.Count);
                    var chunk = data.GetRange(from, Math.Min(1 + rng.Next(64), data.Count - from));
                    data.InsertRange(rng.Next(data.Count + 1), chunk);
                    break;
                }
                case 7: // splice: this input's head, another's tail
                {
                    var other = corpus[rng.Next(corpus.Count)];
                    int head = rng.Next(data.Count + 1);
                    int tail = other.Length == 0 ? 0 : rng.Next(other.Length);
                    data.RemoveRange(head, data.Count - head);
                    data.AddRange(other.AsSpan(tail).ToArray());
                    break;
                }
                case 8: // random bytes inserted
                {
                    var bytes = new byte[1 + rng.Next(16)];
                    rng.NextBytes(bytes);
                    data.InsertRange(Offset(data.Count, rng), bytes);
                    break;
                }
                case 9: // random bytes appended (also what an empty input grows from)
                {
                    var bytes = new byte[1 + rng.Next(32)];
                    rng.NextBytes(bytes);
                    data.AddRange(bytes);
                    break;
                }
                default: // text: a token replaces a stretch
                {
                    var token = System.Text.Encoding.UTF8.GetBytes(InterestingText[rng.Next(InterestingText.Length)]);
                    int at = Offset(data.Count, rng);
                    data.RemoveRange(at, Math.Min(rng.Next(12), data.Count - at));
                    data.InsertRange(at, token);
                    break;
                }
            }
        }
        return data.ToArray();
    }

    /// <summary>Half the time within the first 4 KiB (headers), else anywhere.</summary>
    static int Offset(int length, Random rng) => rng.Next(2) == 0 ? rng.Next(Math.Min(length, 4096)) : rng.Next(length);
}
