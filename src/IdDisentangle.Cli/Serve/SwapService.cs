using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Cli.Serve;

/// <summary>A request that cannot be served, with the HTTP status that says why and the field it concerns.</summary>
internal sealed class RequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// The model behind <c>iddis serve</c>, loaded once. The model is not re-entrant and the machine has few cores, so
/// requests take turns: one computes, at most <c>maxQueue</c> wait, and further ones are refused at once; a waiting
/// request whose client goes away leaves the queue.
/// </summary>
internal sealed class SwapService : IDisposable
{
    readonly DisentanglementModel model;
    readonly int maxQueue;
    readonly FaceInputs _faces;

    public SwapService(DisentanglementModel model, int maxQueue, AlignmentLandmarks landmarks, string? modelsDir)
    {
        this.model = model;
        this.maxQueue = maxQueue;
        _faces = new(
            model.Generator.Resolution,
            model.Device,
            InputAlignment.TrustAlignedAtResolution,
            modelsDir: modelsDir,
            landmarks: landmarks
        );
        // Loaded now, outside any request: a network loaded inside a request's dispose scope would go with it.
        _faces.Aligner();
    }

    readonly SemaphoreSlim _turn = new(1, 1);
    int _inLine;

    public int Resolution => model.Generator.Resolution;

    /// <summary>Runs <paramref name="work"/> in its turn; 503 when the queue is full.</summary>
    public async Task<T> InTurn<T>(Func<T> work, CancellationToken aborted)
    {
        if (Interlocked.Increment(ref _inLine) > maxQueue + 1)
        {
            Interlocked.Decrement(ref _inLine);
            throw new RequestException(503, "the server is busy: too many requests are waiting, try again shortly");
        }
        try
        {
            await _turn.WaitAsync(aborted);
            try
            {
                aborted.ThrowIfCancellationRequested();
                return await Task.Run(work, aborted);
            }
            finally
            {
                _turn.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inLine);
        }
    }

    /// <summary>The face of an uploaded image (its largest), aligned unless it already is; 422 without one.</summary>
    public InputImage Face(InputImage image, string field) =>
        _faces.Align([image], _ => { }).FirstOrDefault()
        ?? throw new RequestException(422, $"{field}: no face found in the image");

    /// <summary>PNG of the swap; pasted back into the attribute photo unless <paramref name="crop"/>.</summary>
    public byte[] Swap(InputImage id, InputImage attr, bool crop)
    {
        using var scope = torch.NewDisposeScope();
        var idFace = Face(id, "id");
        var attrFace = Face(attr, "attr");
        var swapped = InferenceJobs.Swap(model, idFace, attrFace);
        var placement = _faces.PlacementOf(attrFace);
        var result = crop || placement is null ? swapped : InferenceJobs.PasteIntoPhoto(swapped, placement).Photo;
        return ImageIO.Encode(result);
    }

    /// <summary>PNG of the aligned face the model sees.</summary>
    public byte[] Align(InputImage image, string field)
    {
        using var scope = torch.NewDisposeScope();
        return ImageIO.Encode(Face(image, field).Image);
    }

    /// <summary>The frames (PNG each) from the first (identity, attributes) pair's swap to the second's.</summary>
    public List<byte[]> Interpolate(
        (InputImage Id, InputImage Attr) from,
        (InputImage Id, InputImage Attr) to,
        int steps
    )
    {
        using var scope = torch.NewDisposeScope();
        var faces = new Dictionary<InputImage, InputImage>();
        InputImage F(InputImage x, string field) => faces.TryGetValue(x, out var f) ? f : faces[x] = Face(x, field);
        var frames = InferenceJobs.InterpolationFrames(
            model,
            (F(from.Id, "id"), F(from.Attr, "attr")),
            (F(to.Id, to.Id == from.Id ? "id" : "id2"), F(to.Attr, to.Attr == from.Attr ? "attr" : "attr2")),
            steps,
            new InterpolationOptions { LoopFake = false }
        );
        return Enumerable.Range(0, steps).Select(i => ImageIO.Encode(frames[i])).ToList();
    }

    /// <summary>The frames side by side, as one PNG.</summary>
    public static byte[] Strip(IReadOnlyList<byte[]> frames)
    {
        using var scope = torch.NewDisposeScope();
        var images = frames.Select((f, i) => ImageIO.Decode(f, $"frame {i}")).ToArray();
        return ImageIO.Encode(ImageGrid.Compose(torch.stack(images), images.Length));
    }

    public void Dispose()
    {
        _faces.Dispose();
        model.Dispose();
        _turn.Dispose();
    }
}
