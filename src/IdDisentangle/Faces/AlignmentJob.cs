using System.Text.Json;
using System.Text.Json.Nodes;
using IdDisentangle.Imaging;
using static TorchSharp.torch;

namespace IdDisentangle.Faces;

/// <summary>What <see cref="AlignmentJob.Run"/> did.</summary>
internal sealed record AlignmentSummary(int Photos, int Faces, int WithoutFace, int AlreadyThere, int Unreadable);

/// <summary>
/// FFHQ-aligns a folder of photos once, as NVIDIA's and pSp's alignment scripts do, so that later runs can use the
/// faces with <c>--aligned</c>: OUT/STEM.png per photo (STEM_face1.png, ... with every face), and OUT/alignment.json
/// recording for each output its source, the detection score and box, the 68 landmarks and the square cut from the
/// photo. Resumable: photos whose output exists are passed over unless <c>overwrite</c>; the record is rewritten
/// atomically as the job goes. Photos are read one at a time, so folders of any size fit in memory.
/// </summary>
internal static class AlignmentJob
{
    public const string RecordFile = "alignment.json";

    public static AlignmentSummary Run(
        FaceAligner aligner,
        string inputDir,
        string outDir,
        bool overwrite,
        Action<string> log,
        Action? progress = null,
        CancellationToken cancellation = default
    )
    {
        var listing = ImageFolder.List(inputDir);
        if (listing.Images.Count == 0)
            throw new InvalidDataException($"{inputDir}: no image files");
        if (
            Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar)
            == Path.GetFullPath(inputDir).TrimEnd(Path.DirectorySeparatorChar)
        )
            throw new IOException(
                $"{outDir}: the output folder must not be the input folder (it would mix faces with photos)"
            );
        Directory.CreateDirectory(outDir);
        var inputs = listing.Images.Select(Path.GetFullPath).ToHashSet();
        string recordPath = Path.Combine(outDir, RecordFile);
        var record = ReadRecord(recordPath, log);

        int faces = 0,
            withoutFace = 0,
            already = 0,
            unreadable = 0,
            sinceSave = 0;
        foreach (var file in listing.Images)
        {
            cancellation.ThrowIfCancellationRequested();
            string stem = Path.GetFileNameWithoutExtension(file);
            // Done only when its faces are both written and recorded: a job killed between the two (the record is
            // saved every 25 photos) redoes the photo, which gives the same faces.
            bool Done(string name) => File.Exists(Path.Combine(outDir, name)) && record.ContainsKey(name);
            if (!overwrite && (Done(stem + ".png") || Done(stem + "_face1.png")))
            {
                already++;
                progress?.Invoke();
                continue;
            }
            using var scope = NewDisposeScope();
            Tensor image;
            try
            {
                image = ImageIO.Read(file);
            }
            catch (ImageDecodeException e)
            {
                log($"skipped: {e.Message}");
                unreadable++;
                progress?.Invoke();
                continue;
            }
            var aligned = aligner.AlignFaces(new InputImage(file, stem, image), log);
            if (aligned.Count == 0)
                withoutFace++;
            foreach (var (face, index) in aligned.Select((f, i) => (f, i)))
            {
                string output = Path.Combine(outDir, face.Face.Stem + ".png");
                if (inputs.Contains(Path.GetFullPath(output)))
                    throw new IOException($"{output}: refusing to overwrite an input image");
                ImageIO.Write(output, face.Face.Image);
                record[Path.GetFileName(output)] = Entry(file, index, face, aligner.Resolution, aligner.Landmarks);
                faces++;
            }
            if (++sinceSave >= 25)
            {
                WriteRecord(recordPath, record);
                sinceSave = 0;
            }
            progress?.Invoke();
        }
        WriteRecord(recordPath, record);
        return new AlignmentSummary(listing.Images.Count, faces, withoutFace, already, unreadable);
    }

    static JsonObject Entry(string source, int index, AlignedFace face, int size, AlignmentLandmarks landmarks)
    {
        static JsonArray Point(PixelPoint p) => [Math.Round(p.X, 3), Math.Round(p.Y, 3)];
        var box = face.Detection.Box;
        return new JsonObject
        {
            ["source"] = Path.GetFullPath(source),
            ["face"] = index + 1,
            ["size"] = size,
            ["score"] = Math.Round(face.Detection.Score, 5),
            ["box"] = new JsonArray(
                Math.Round(box.X, 2),
                Math.Round(box.Y, 2),
                Math.Round(box.Width, 2),
                Math.Round(box.Height, 2)
            ),
            ["landmark_model"] = landmarks == AlignmentLandmarks.Dlib ? "dlib" : "face-api",
            ["landmarks"] = new JsonArray(face.Detection.Landmarks.Select(p => (JsonNode)Point(p)).ToArray()),
            ["quad"] = new JsonArray(
                Point(face.Quad.UpperLeft),
                Point(face.Quad.LowerLeft),
                Point(face.Quad.LowerRight),
                Point(face.Quad.UpperRight)
            ),
        };
    }

    internal static JsonObject ReadRecord(string path, Action<string> log)
    {
        if (!File.Exists(path))
            return [];
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException e)
        {
            // Never lose what is there: the unreadable record is kept aside and a new one started.
            string aside = path + ".unreadable";
            File.Copy(path, aside, overwrite: true);
            log($"{path}: unreadable ({e.Message}); kept as {aside}, starting a new record");
            return [];
        }
    }

    internal static void WriteRecord(string path, JsonObject record) =>
        IO.AtomicFile.WriteAllBytes(
            path,
            JsonSerializer.SerializeToUtf8Bytes(record, new JsonSerializerOptions { WriteIndented = false })
        );
}
