using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>
/// Damaged copies of our own fixtures (truncated, bytes flipped, runs zeroed, deterministic per seed) given to the
/// readers: each either still loads (harmless damage) or fails with a typed error (an IOException or an
/// InvalidDataException naming the file), never with an unhandled runtime exception.
/// </summary>
public class DamagedFileTests
{
    static IEnumerable<(string Name, byte[] Bytes)> Mutations(byte[] original, int seed)
    {
        var rng = new Random(seed);
        foreach (double cut in new[] { 0.003, 0.1, 0.5, 0.9, 0.999 })
            yield return ($"truncated at {cut:P1}", original[..(int)(original.Length * cut)]);
        for (int k = 0; k < 4; k++)
        {
            var flipped = (byte[])original.Clone();
            for (int i = 0; i < 16; i++)
                flipped[rng.Next(flipped.Length)] ^= (byte)(1 << rng.Next(8));
            yield return ($"16 bits flipped (#{k})", flipped);
        }
        for (int k = 0; k < 3; k++)
        {
            var zeroed = (byte[])original.Clone();
            int at = rng.Next(zeroed.Length),
                n = Math.Min(1024, zeroed.Length - at);
            Array.Clear(zeroed, at, n);
            yield return ($"{n} bytes zeroed at {at}", zeroed);
        }
    }

    public static TheoryData<string, string> Files =>
        new()
        {
            { "generator", TestPaths.Fixture("stylegan2", "generator.pt") },
            { "generator", TestPaths.Fixture("stylegan1", "stylegan1_official_layout.pkl") },
            { "generator", TestPaths.Fixture("stylegan1", "stylegan1_tf2_keras.h5") },
            { "generator", TestPaths.Fixture("nvidia-stylegan2", "ada.pkl") },
            { "generator", TestPaths.Fixture("nvidia-stylegan2", "tf_stylegan2.pkl") },
            { "npy", TestPaths.Fixture("stylegan2", "wplus.npy") },
            { "image", Path.Combine(TestPaths.Data("photos-unaligned"), "DST_01.jpg") },
            { "image", Path.Combine(TestPaths.Data("photos-unaligned"), "specific1.png") },
        };

    [Theory]
    [Trait("Category", TestCategories.Slow)]
    [MemberData(nameof(Files))]
    public void DamagedFilesGiveTypedErrors(string reader, string fixture)
    {
        string dir = TestPaths.NewTempDir();
        var failures = new List<string>();
        int loaded = 0,
            refused = 0;
        foreach (var (what, bytes) in Mutations(File.ReadAllBytes(fixture), fixture.Length))
        {
            string file = Path.Combine(dir, "damaged" + Path.GetExtension(fixture));
            File.WriteAllBytes(file, bytes);
            using var scope = NewDisposeScope();
            try
            {
                switch (reader)
                {
                    case "generator":
                        ((IDisposable)GeneratorFiles.Load(file, out _)).Dispose();
                        break;
                    case "npy":
                        Npy.Read(file);
                        break;
                    default:
                        ImageIO.Read(file);
                        break;
                }
                loaded++;
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                refused++;
                if (!e.Message.Contains(file, StringComparison.Ordinal))
                    failures.Add($"{what}: {e.GetType().Name} without the file's name: {e.Message}");
            }
            catch (Exception e)
            {
                failures.Add($"{what}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
        }
        Assert.True(
            failures.Count == 0,
            $"{Path.GetFileName(fixture)} ({loaded} loaded, {refused} refused):\n" + string.Join("\n", failures)
        );
    }
}
