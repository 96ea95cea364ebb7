using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Inference;

/// <summary>
/// The paper's three inference functions over folders of aligned faces: every (identity, attribute)
/// combination as a table, stem-matched pairs, and disentangled interpolation. Unreadable inputs are reported
/// through the log and skipped; outputs never replace an input and existing output folders are kept.
/// </summary>
internal static class InferenceJobs
{
    /// <summary>Reads the images of a folder; non-images and unreadable files are reported and skipped.</summary>
    public static List<InputImage> ReadFolder(string dir, Action<string> log)
    {
        var listing = ImageFolder.List(dir);
        if (listing.Skipped.Count > 0)
            log($"{dir}: skipped {listing.Skipped.Count} non-image file(s)");
        var result = new List<InputImage>();
        foreach (var f in listing.Images)
        {
            try
            {
                result.Add(new InputImage(f, System.IO.Path.GetFileNameWithoutExtension(f), ImageIO.Read(f)));
            }
            catch (ImageDecodeException e)
            {
                log($"skipped: {e.Message}");
            }
        }
        if (result.Count == 0)
            throw new InvalidDataException($"{dir}: no readable image");
        return result;
    }

    /// <summary>One image file as an input.</summary>
    public static InputImage ReadImage(string path) =>
        new(path, System.IO.Path.GetFileNameWithoutExtension(path), ImageIO.Read(path));

    /// <summary>
    /// One swap: the face of <paramref name="id"/> with the attributes of <paramref name="attr"/>, [3,R,R] in [0,1]
    /// on the CPU (with <paramref name="reconstruct"/>, each input first replaced by G(x, x)).
    /// </summary>
    public static Tensor Swap(DisentanglementModel model, InputImage id, InputImage attr, bool reconstruct = false)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var (ids, attrs) = Prepare(model, [id], [attr], reconstruct);
        return model.Swap(ids, attrs)[0].MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The output for a rendered face: pasted back into the attribute input's photo when <paramref name="faces"/>
    /// aligned it from one, else the face itself.
    /// </summary>
    public static Func<InputImage, Tensor, Tensor> PasteBackInto(FaceInputs faces, bool colourMatch = false) =>
        (attr, face) =>
            faces.PlacementOf(attr) is { } p ? PasteIntoPhoto(face, p, colourMatch: colourMatch).Photo : face;

    /// <summary>
    /// Every face of one photo (<paramref name="attrFaces"/>, aligned from it by <paramref name="faces"/>) given the
    /// identity of <paramref name="id"/>, each pasted back in turn: the photo with all its faces replaced.
    /// </summary>
    public static Tensor SwapEveryFace(
        DisentanglementModel model,
        InputImage id,
        IReadOnlyList<InputImage> attrFaces,
        FaceInputs faces,
        bool reconstruct = false,
        bool colourMatch = false
    )
    {
        Tensor? photo = null;
        foreach (var attr in attrFaces)
        {
            var placement =
                faces.PlacementOf(attr)
                ?? throw new ArgumentException($"{attr.Path}: a face that was not aligned from a photo");
            photo = PasteIntoPhoto(Swap(model, id, attr, reconstruct), placement, photo, colourMatch).Photo;
        }
        return photo ?? throw new ArgumentException("no faces to swap");
    }

    /// <summary>
    /// A face pasted back into the photo it was aligned from (<paramref name="placement"/>), or into
    /// <paramref name="into"/> when other faces of it are already replaced: the photo at its size,
    /// only the face region changed, and the soft mask used ([1,R,R] in the aligned square). With
    /// <paramref name="colourMatch"/> the face's mean colour under the mask is first moved to the aligned input's.
    /// </summary>
    public static (Tensor Photo, Tensor Mask) PasteIntoPhoto(
        Tensor face,
        FaceInputs.Placement placement,
        Tensor? into = null,
        bool colourMatch = false
    )
    {
        int r = (int)face.shape[^1];
        var mask = PasteBack.FaceMask(placement.Face.Detection.Landmarks, placement.Face.Quad, r);
        if (colourMatch)
            face = PasteBack.MatchColours(face, ResizedTo(placement.Face.Face.Image, r), mask, matchSpread: false);
        return (PasteBack.Paste(into ?? placement.Photo.Image, face, placement.Face.Quad, mask), mask);
    }

    static Tensor ResizedTo(Tensor image, int r) =>
        image.shape[^1] == r && image.shape[^2] == r ? image : ImageOps.Resize(image, r, r, ResizeFilter.Area);

    static void Write(string path, Tensor image, ISet<string> inputs)
    {
        if (inputs.Contains(System.IO.Path.GetFullPath(path)))
            throw new IOException($"{path}: refusing to overwrite an input image");
        ImageIO.Write(path, image);
    }

    static HashSet<string> InputSet(params IEnumerable<InputImage>[] groups) =>
        groups.SelectMany(g => g).Select(i => System.IO.Path.GetFullPath(i.Path)).ToHashSet();

    /// <summary>
    /// Every combination: OUT/attr_{stem}/id_{stem}.png, and OUT/grid.png with the attribute images on the top row,
    /// the identity images in the first column and the results in the cells. Returns the number of results.
    /// </summary>
    public static int Grid(
        DisentanglementModel model,
        IReadOnlyList<InputImage> ids,
        IReadOnlyList<InputImage> attrs,
        string outDir,
        int batchSize = 8,
        bool reconstruct = false,
        Action<int>? progress = null,
        CancellationToken cancellation = default,
        Func<InputImage, Tensor, Tensor>? output = null
    )
    {
        var inputs = InputSet(ids, attrs);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var (idImgs, attrImgs) = Prepare(model, ids, attrs, reconstruct);
        var idCodes = model.IdentityCodes(idImgs);
        var attrCodes = model.AttributeCodes(attrImgs);
        var results = new Tensor?[ids.Count, attrs.Count];
        var pairs = (
            from a in Enumerable.Range(0, attrs.Count)
            from i in Enumerable.Range(0, ids.Count)
            select (i, a)
        ).ToList();
        for (int s = 0; s < pairs.Count; s += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var chunk = pairs.GetRange(s, Math.Min(batchSize, pairs.Count - s));
            var w = model.WFromCodes(
                idCodes.index_select(0, torch.tensor(chunk.Select(p => (long)p.i).ToArray(), device: model.Device)),
                attrCodes.index_select(0, torch.tensor(chunk.Select(p => (long)p.a).ToArray(), device: model.Device))
            );
            var images = model.Render(w);
            for (int j = 0; j < chunk.Count; j++)
            {
                var (i, a) = chunk[j];
                results[i, a] = images[j].MoveToOuterDisposeScope();
                Write(
                    System.IO.Path.Combine(outDir, $"attr_{attrs[a].Stem}", $"id_{ids[i].Stem}.png"),
                    output?.Invoke(attrs[a], images[j]) ?? images[j],
                    inputs
                );
            }
            progress?.Invoke(chunk.Count);
        }
        var cells = new List<Tensor?> { null };
        cells.AddRange(attrImgs.cpu().unbind(0));
        for (int i = 0; i < ids.Count; i++)
        {
            cells.Add(idImgs[i].cpu());
            for (int a = 0; a < attrs.Count; a++)
                cells.Add(results[i, a]);
        }
        var table = ImageGrid.Compose(
            cells,
            ids.Count + 1,
            attrs.Count + 1,
            new GridLayout
            {
                ColumnLabels = ["", .. attrs.Select(x => x.Stem)],
                RowLabels = ["", .. ids.Select(x => x.Stem)],
            }
        );
        Write(System.IO.Path.Combine(outDir, "grid.png"), table, inputs);
        return pairs.Count;
    }

    static (Tensor Ids, Tensor Attrs) Prepare(
        DisentanglementModel model,
        IReadOnlyList<InputImage> ids,
        IReadOnlyList<InputImage> attrs,
        bool reconstruct
    )
    {
        int r = model.Generator.Resolution;
        Tensor Stack(IReadOnlyList<InputImage> xs) =>
            torch.stack(xs.Select(x => ImageOps.Resize(x.Image, r, r, ResizeFilter.Area)).ToArray());
        var idImgs = Stack(ids);
        var attrImgs = Stack(attrs);
        if (reconstruct)
        {
            // The paper's inference first replaces generated inputs by the model's reconstruction G(x, x).
            idImgs = model.Reconstruct(idImgs);
            attrImgs = model.Reconstruct(attrImgs);
        }
        return (idImgs, attrImgs);
    }

    /// <summary>Pairs files that share a stem: OUT/{stem}.png. Returns the stems without a partner (not
    /// fatal).</summary>
    public static (int Written, IReadOnlyList<string> Unmatched) Pairs(
        DisentanglementModel model,
        IReadOnlyList<InputImage> ids,
        IReadOnlyList<InputImage> attrs,
        string outDir,
        int batchSize = 8,
        bool reconstruct = false,
        Action<int>? progress = null,
        CancellationToken cancellation = default,
        Func<InputImage, Tensor, Tensor>? output = null
    )
    {
        var inputs = InputSet(ids, attrs);
        var byStem = attrs.ToDictionary(a => a.Stem, StringComparer.Ordinal);
        var matched = ids.Where(i => byStem.ContainsKey(i.Stem)).ToList();
        var unmatched = ids.Where(i => !byStem.ContainsKey(i.Stem))
            .Select(i => $"identity {i.Path}")
            .Concat(attrs.Where(a => !ids.Any(i => i.Stem == a.Stem)).Select(a => $"attributes {a.Path}"))
            .ToList();
        for (int s = 0; s < matched.Count; s += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.inference_mode();
            var chunk = matched.GetRange(s, Math.Min(batchSize, matched.Count - s));
            var (idImgs, attrImgs) = Prepare(model, chunk, chunk.Select(c => byStem[c.Stem]).ToList(), reconstruct);
            var images = model.Render(model.MapToW(idImgs, attrImgs));
            for (int j = 0; j < chunk.Count; j++)
                Write(
                    System.IO.Path.Combine(outDir, $"{chunk[j].Stem}.png"),
                    output?.Invoke(byStem[chunk[j].Stem], images[j]) ?? images[j],
                    inputs
                );
            progress?.Invoke(chunk.Count);
        }
        return (matched.Count, unmatched);
    }

    /// <summary>The subfolders of <paramref name="inputDir"/>, one interpolation each, in name order.</summary>
    public static IReadOnlyList<string> InterpolationFolders(string inputDir)
    {
        if (!Directory.Exists(inputDir))
            throw new SettingException(Setting.InputFolder, inputDir, "no such folder");
        var subs = Directory.GetDirectories(inputDir).Order(StringComparer.Ordinal).ToList();
        return subs.Count > 0
            ? subs
            : throw new SettingException(Setting.InputFolder, inputDir, "no subfolders to interpolate");
    }

    /// <summary>
    /// <see cref="Interpolate"/> for each folder (its faces through <paramref name="faces"/>) into OUT/NAME; a folder
    /// that does not hold one of the two layouts is reported and passed over. Returns the interpolations written.
    /// </summary>
    public static int InterpolateFolders(
        DisentanglementModel model,
        FaceInputs faces,
        IReadOnlyList<string> folders,
        string outDir,
        int steps,
        InterpolationOptions options,
        Action<string> log,
        Action? progress = null,
        CancellationToken cancellation = default,
        bool pasteBack = true,
        bool colourMatch = false
    )
    {
        int done = 0;
        foreach (var folder in folders)
        {
            cancellation.ThrowIfCancellationRequested();
            try
            {
                var images = faces.Align(ReadFolder(folder, log), log, cancellation: cancellation);
                Interpolate(
                    model,
                    images,
                    System.IO.Path.Combine(outDir, System.IO.Path.GetFileName(folder)),
                    steps,
                    options,
                    pasteBack ? PasteBackInto(faces, colourMatch) : null
                );
                done++;
            }
            catch (InvalidDataException e)
            {
                log($"skipped: {e.Message}");
            }
            progress?.Invoke();
        }
        return done;
    }

    /// <summary>
    /// One interpolation, as the paper's Inference.interpolate: a folder with one identity image and two attribute
    /// images interpolates attributes, one attribute image and two identity images interpolates identity. Names
    /// containing "attr" are attribute images, other names containing "id" identity images. With
    /// <paramref name="options"/>' LoopFake (the paper's default) generated inputs are first replaced by their
    /// reconstruction G(x, x); inputs flagged real are not. Linear in W (or in the concatenated codes, each frame
    /// mapped by M), <paramref name="steps"/> frames including both ends (the paper's loop stops one short of the
    /// end point). Writes OUT/frame_XX.png and OUT/strip.png; returns the frames [steps,3,R,R].
    /// </summary>
    public static Tensor Interpolate(
        DisentanglementModel model,
        IReadOnlyList<InputImage> images,
        string outDir,
        int steps = 9,
        InterpolationOptions? options = null,
        Func<InputImage, Tensor, Tensor>? output = null
    )
    {
        options ??= new InterpolationOptions();
        if (steps < 2)
            throw new SettingException(Setting.InterpolationSteps, steps.ToString(), "at least 2 (both end points)");
        var attrs = images
            .Where(i => i.Stem.Contains("attr", StringComparison.OrdinalIgnoreCase))
            .OrderBy(i => i.Stem, StringComparer.Ordinal)
            .ToList();
        var ids = images
            .Where(i =>
                !i.Stem.Contains("attr", StringComparison.OrdinalIgnoreCase)
                && i.Stem.Contains("id", StringComparison.OrdinalIgnoreCase)
            )
            .OrderBy(i => i.Stem, StringComparer.Ordinal)
            .ToList();
        (InputImage, InputImage, InputImage, InputImage) ends = (ids.Count, attrs.Count) switch
        {
            (1, 2) => (ids[0], attrs[0], ids[0], attrs[1]),
            (2, 1) => (ids[0], attrs[0], ids[1], attrs[0]),
            _ => throw new InvalidDataException(
                $"{System.IO.Path.GetDirectoryName(images.FirstOrDefault()?.Path) ?? "folder"}: needs one 'id' and two 'attr' images, or two 'id' and one 'attr' image (found {ids.Count} id, {attrs.Count} attr)"
            ),
        };
        var inputs = InputSet(images);
        using var scope = torch.NewDisposeScope();
        var frames = InterpolationFrames(model, (ends.Item1, ends.Item2), (ends.Item3, ends.Item4), steps, options);
        for (int i = 0; i < steps; i++)
            Write(
                System.IO.Path.Combine(outDir, $"frame_{i:00}.png"),
                // Identity interpolation keeps one attribute image: each frame can go back into that photo.
                attrs.Count == 1
                && output is not null
                    ? output(attrs[0], frames[i])
                    : frames[i],
                inputs
            );
        Write(System.IO.Path.Combine(outDir, "strip.png"), ImageGrid.Compose(frames, steps), inputs);
        return frames.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The frames [steps,3,R,R] from the swap of <paramref name="from"/> (identity, attributes) to that of
    /// <paramref name="to"/>, linear in W or in the codes as <paramref name="options"/> say (their LoopFake replaces
    /// inputs not flagged real by G(x, x) first). Nothing is written.
    /// </summary>
    public static Tensor InterpolationFrames(
        DisentanglementModel model,
        (InputImage Id, InputImage Attr) from,
        (InputImage Id, InputImage Attr) to,
        int steps,
        InterpolationOptions options
    )
    {
        if (steps < 2)
            throw new SettingException(Setting.InterpolationSteps, steps.ToString(), "at least 2 (both end points)");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var (idImgs, attrImgs) = Prepare(model, [from.Id, to.Id], [from.Attr, to.Attr], reconstruct: false);
        if (options.LoopFake && !options.RealId)
            idImgs = model.ReconstructForEncoding(idImgs);
        if (options.LoopFake && !options.RealAttr)
            attrImgs = model.ReconstructForEncoding(attrImgs);
        var t = torch.linspace(0, 1, steps, device: model.Device).view(-1, 1);
        Tensor ws;
        if (options.Space == InterpolationSpace.W)
        {
            var w = model.MapToW(idImgs, attrImgs); // the two end codes
            ws = torch.lerp(w[0].unsqueeze(0).expand(steps, -1), w[1].unsqueeze(0).expand(steps, -1), t);
        }
        else
        {
            var zId = model.IdentityCodes(idImgs);
            var zAttr = model.AttributeCodes(attrImgs);
            ws = model.WFromCodes(
                torch.lerp(zId[0].unsqueeze(0).expand(steps, -1), zId[1].unsqueeze(0).expand(steps, -1), t),
                torch.lerp(zAttr[0].unsqueeze(0).expand(steps, -1), zAttr[1].unsqueeze(0).expand(steps, -1), t)
            );
        }
        return model.Render(ws).MoveToOuterDisposeScope();
    }
}

/// <summary>Where the paper's interpolation is linear: in W (w_space=True, its default) or in the concatenated
/// codes.</summary>
internal enum InterpolationSpace
{
    W,
    Codes,
}

/// <summary>The paper's interpolation switches (inference.py's loop_fake, real_id, real_attr, w_space).</summary>
internal sealed record InterpolationOptions
{
    /// <summary>Replace generated inputs by their reconstruction G(x, x) before encoding them (the paper's
    /// default).</summary>
    public bool LoopFake { get; init; } = true;

    /// <summary>The identity images are real photos: never replaced by a reconstruction.</summary>
    public bool RealId { get; init; }

    /// <summary>The attribute images are real photos: never replaced by a reconstruction.</summary>
    public bool RealAttr { get; init; }

    public InterpolationSpace Space { get; init; } = InterpolationSpace.W;
}
