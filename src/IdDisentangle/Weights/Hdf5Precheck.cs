using System.Buffers.Binary;

namespace IdDisentangle.Weights;

/// <summary>
/// Walks an HDF5 file's structure before PureHDF opens it, and refuses what would make PureHDF allocate memory the
/// file cannot back. PureHDF allocates claimed sizes while it parses object headers (an inline attribute's data, a
/// fill value, a link name, compact data, enumeration values, a local heap's data segment), before any caller can
/// look; this walk reads the same structures the same way (objects reached from the root through symbol tables,
/// hard links, continuation blocks and shared messages) and checks each claim against the bytes that hold it.
/// What the walk cannot follow is refused rather than passed on unchecked: dense link or attribute storage (fractal
/// heaps, written only by libver="latest" with many entries), shared-message heaps, external storage and filtered
/// (compressed) datasets. Keras and h5py's default format use none of them.
/// </summary>
internal sealed class Hdf5Precheck
{
    const int MaxDatatypeDepth = 16;

    readonly string path;
    readonly byte[] bytes;
    readonly HashSet<long> visited = [];
    readonly Queue<long> pending = new();
    int offsetSize = 8;
    int lengthSize = 8;
    long baseAddress;
    int work;

    Hdf5Precheck(string path, byte[] bytes)
    {
        this.path = path;
        this.bytes = bytes;
    }

    /// <summary>Every structure reachable from the root is checked; throws <see cref="InvalidDataException"/>
    /// naming the file and the byte offset of the first claim the file cannot back.</summary>
    public static void Check(string path, byte[] bytes)
    {
        var walk = new Hdf5Precheck(path, bytes);
        walk.Superblock();
        while (walk.pending.TryDequeue(out long header))
            walk.ObjectHeader(header);
        walk.GlobalHeaps();
    }

    /// <summary>
    /// Variable-length strings (Keras's layer and weight names) live in global heap collections, reached through
    /// heap IDs inside attribute and dataset data, which this walk does not decode; so every "GCOL" signature in
    /// the file is checked, as PureHDF would read it: a version or reserved bytes it does not look at, a collection
    /// size it subtracts its header from, objects until fewer than a header's bytes are left, each read whole with
    /// its padding before anything is compared with the collection's end.
    /// </summary>
    void GlobalHeaps()
    {
        ReadOnlySpan<byte> signature = "GCOL"u8;
        long header = 8 + lengthSize;
        for (int at = bytes.AsSpan().IndexOf(signature); at >= 0; )
        {
            ulong size = Unsigned(at + 8, lengthSize, "a global heap");
            if (size < (ulong)header || size > (ulong)(bytes.Length - at))
                throw Damaged(at, $"a global heap claiming {size} bytes");
            long end = at + (long)size;
            for (long o = at + header; end - o > header; )
            {
                Spend(o);
                if (Unsigned(o, 2, "a global heap object") == 0)
                    break; // the free space that ends the collection
                ulong objectSize = Unsigned(o + 8, lengthSize, "a global heap object");
                ulong padded = (objectSize + 7) & ~7UL;
                if (objectSize > (ulong)(end - o - header) || padded > (ulong)(end - o - header))
                    throw Damaged(o, $"a global heap object claiming {objectSize} bytes, more than its heap holds");
                o += header + (long)padded;
            }
            int next = bytes.AsSpan(at + 1).IndexOf(signature);
            at = next < 0 ? -1 : at + 1 + next;
        }
    }

    InvalidDataException Damaged(long at, string what) => new($"{path}: {what} at byte {at}");

    /// <summary>Each structure read costs one unit; a file can hold at most one structure per 8 bytes, so more work
    /// than that means a loop.</summary>
    void Spend(long at)
    {
        if (++work > bytes.Length / 8 + 64)
            throw Damaged(at, "a loop in the HDF5 structure");
    }

    void Need(long at, long count, string what)
    {
        if (at < 0 || count < 0 || at > bytes.Length || count > bytes.Length - at)
            throw Damaged(at, $"{what} runs past the end of the file ({bytes.Length} bytes)");
    }

    ulong Unsigned(long at, int size, string what)
    {
        Need(at, size, what);
        var span = bytes.AsSpan((int)at, size);
        return size switch
        {
            1 => span[0],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(span),
            4 => BinaryPrimitives.ReadUInt32LittleEndian(span),
            8 => BinaryPrimitives.ReadUInt64LittleEndian(span),
            _ => throw Damaged(at, $"a field of {size} bytes in {what}"),
        };
    }

    bool IsUndefined(ulong address) => address == (offsetSize == 8 ? ulong.MaxValue : (1UL << 8 * offsetSize) - 1);

    /// <summary>An address in the file as a position in <see cref="bytes"/>, or an error naming where it was read.
    /// </summary>
    long Address(long at, string what)
    {
        ulong value = Unsigned(at, offsetSize, what);
        ulong position = value + (ulong)baseAddress;
        if (IsUndefined(value) || position >= (ulong)bytes.Length)
            throw Damaged(at, $"{what} points outside the file ({value})");
        return (long)position;
    }

    long? OptionalAddress(long at, string what) =>
        IsUndefined(Unsigned(at, offsetSize, what)) ? null : Address(at, what);

    void Superblock()
    {
        Need(0, 16, "the superblock");
        int version = bytes[8];
        if (version is 0 or 1)
        {
            offsetSize = bytes[13];
            lengthSize = bytes[14];
            CheckSizes();
            long at = version == 0 ? 24 : 28;
            baseAddress = (long)Unsigned(at, offsetSize, "the superblock's base address");
            if (baseAddress != 0)
                throw Damaged(at, "a base address other than 0 (an HDF5 file inside another file)");
            // Root group symbol table entry, after the base, free-space, end-of-file and driver addresses.
            SymbolTableEntry(at + 4L * offsetSize);
        }
        else if (version is 2 or 3)
        {
            offsetSize = bytes[9];
            lengthSize = bytes[10];
            CheckSizes();
            baseAddress = (long)Unsigned(12, offsetSize, "the superblock's base address");
            if (baseAddress != 0)
                throw Damaged(12, "a base address other than 0 (an HDF5 file inside another file)");
            if (OptionalAddress(12 + offsetSize, "the superblock extension") is long extension)
                Enqueue(extension);
            Enqueue(Address(12 + 3L * offsetSize, "the root group"));
        }
        else
            throw Damaged(8, $"superblock version {version} (0 to 3 are HDF5's)");
    }

    void CheckSizes()
    {
        if (offsetSize is not (2 or 4 or 8) || lengthSize is not (2 or 4 or 8))
            throw Damaged(13, $"offsets of {offsetSize} and lengths of {lengthSize} bytes (2, 4 or 8 are HDF5's)");
    }

    void Enqueue(long header)
    {
        if (visited.Add(header))
            pending.Enqueue(header);
    }

    /// <summary>A symbol table entry: the object's header, and for a group whose entry caches it, its symbol table.
    /// </summary>
    void SymbolTableEntry(long at)
    {
        Need(at, 2L * offsetSize + 24, "a symbol table entry");
        uint cacheType = (uint)Unsigned(at + 2L * offsetSize, 4, "a symbol table entry");
        if (cacheType == 2)
            return; // a soft link: a path in the local heap, no object header
        Enqueue(Address(at + offsetSize, "a symbol table entry's object header"));
        if (cacheType == 1)
        {
            long scratch = at + 2L * offsetSize + 8;
            SymbolTable(
                Address(scratch, "a cached group B-tree"),
                Address(scratch + offsetSize, "a cached local heap")
            );
        }
    }

    void SymbolTable(long btree, long heap)
    {
        LocalHeap(heap);
        GroupBTreeNode(btree, depth: 0);
    }

    /// <summary>A local heap ("HEAP"): PureHDF reads its data segment whole.</summary>
    void LocalHeap(long at)
    {
        Spend(at);
        Need(at, 8 + 2L * lengthSize + offsetSize, "a local heap");
        if (!bytes.AsSpan((int)at, 4).SequenceEqual("HEAP"u8))
            throw Damaged(at, "a local heap without its signature");
        ulong size = Unsigned(at + 8, lengthSize, "a local heap");
        long data = Address(at + 8 + 2L * lengthSize, "a local heap's data segment");
        if (size > (ulong)(bytes.Length - data))
            throw Damaged(at, $"a local heap claiming {size} bytes, more than the file holds after it");
    }

    /// <summary>A version 1 B-tree node of a group ("TREE", type 0): inner nodes lead to nodes, leaves to symbol
    /// table nodes.</summary>
    void GroupBTreeNode(long at, int depth)
    {
        var (level, entries, keys) = BTreeNode(at, 0, depth, lengthSize, "a group B-tree node");
        for (int i = 0; i < entries; i++)
        {
            long child = Address(keys + lengthSize + (long)i * (lengthSize + offsetSize), "a group B-tree child");
            if (level > 0)
                GroupBTreeNode(child, depth + 1);
            else
                SymbolTableNode(child);
        }
    }

    /// <summary>The header of a version 1 B-tree node ("TREE") of <paramref name="type"/> (0 groups, 1 chunks) and
    /// where its keys begin, once its entries are known to lie in the file.</summary>
    (int Level, int Entries, long Keys) BTreeNode(long at, int type, int depth, long keySize, string what)
    {
        Spend(at);
        Need(at, 8 + 2L * offsetSize, what);
        if (!bytes.AsSpan((int)at, 4).SequenceEqual("TREE"u8) || bytes[at + 4] != type)
            throw Damaged(at, $"{what} without its signature");
        int level = bytes[at + 5];
        int entries = (int)Unsigned(at + 6, 2, what);
        if (level > 64 || depth > 64)
            throw Damaged(at, $"{what} {Math.Max(level, depth)} levels deep");
        long keys = at + 8 + 2L * offsetSize;
        Need(keys, entries * (keySize + offsetSize) + keySize, $"{what}'s entries");
        return (level, entries, keys);
    }

    /// <summary>A symbol table node ("SNOD"): one entry per link of the group.</summary>
    void SymbolTableNode(long at)
    {
        Spend(at);
        Need(at, 8, "a symbol table node");
        if (!bytes.AsSpan((int)at, 4).SequenceEqual("SNOD"u8))
            throw Damaged(at, "a symbol table node without its signature");
        int symbols = (int)Unsigned(at + 6, 2, "a symbol table node");
        long entrySize = 2L * offsetSize + 24;
        Need(at + 8, symbols * entrySize, "a symbol table node's entries");
        for (int i = 0; i < symbols; i++)
            SymbolTableEntry(at + 8 + i * entrySize);
    }

    /// <summary>An object header and the structures its messages lead to.</summary>
    void ObjectHeader(long at)
    {
        var messages = Messages(at);
        uint elementSize = 0;
        bool filtered = false;
        foreach (var m in messages)
        {
            if (m.Type == DatatypeType)
                elementSize = DatatypeOf(m).Size;
            filtered |= m.Type == FilterPipelineType;
        }
        foreach (var m in messages)
            CheckMessage(m, elementSize, filtered);
    }

    /// <summary>The messages of an object header, version 1 (no signature) or 2 ("OHDR"), with its continuation
    /// blocks.</summary>
    List<Message> Messages(long at)
    {
        Spend(at);
        Need(at, 16, "an object header");
        var messages = new List<Message>();
        if (bytes.AsSpan((int)at, 4).SequenceEqual("OHDR"u8))
        {
            if (bytes[at + 4] != 2)
                throw Damaged(at, $"object header version {bytes[at + 4]}");
            int flags = bytes[at + 5];
            long p = at + 6 + ((flags & 0x20) != 0 ? 16 : 0) + ((flags & 0x10) != 0 ? 4 : 0);
            int fieldSize = 1 << (flags & 3);
            ulong chunk = Unsigned(p, fieldSize, "an object header's size");
            ReadMessages(p + fieldSize, chunk, 2, (flags & 0x04) != 0, messages);
            for (int i = 0; i < messages.Count; i++)
                if (messages[i].Type == ContinuationType)
                {
                    var (block, length) = Continuation(messages[i]);
                    if (length < 8 || !bytes.AsSpan((int)block, 4).SequenceEqual("OCHK"u8))
                        throw Damaged(block, "an object header continuation without its signature");
                    ReadMessages(block + 4, (ulong)length - 8, 2, (flags & 0x04) != 0, messages);
                }
        }
        else if (bytes[at] == 1)
        {
            ulong size = Unsigned(at + 8, 4, "an object header's size");
            ReadMessages(at + 16, size, 1, false, messages);
            for (int i = 0; i < messages.Count; i++)
                if (messages[i].Type == ContinuationType)
                {
                    var (block, length) = Continuation(messages[i]);
                    ReadMessages(block, (ulong)length, 1, false, messages);
                }
        }
        else
            throw Damaged(at, "no object header (neither version 1 nor an OHDR signature)");
        return messages;
    }

    /// <summary>The message of <paramref name="type"/> that a shared message refers to, in the other object header
    /// PureHDF would parse for it (that header is walked in full too).</summary>
    Message Referenced(long address, int type, long from)
    {
        Enqueue(address);
        foreach (var m in Messages(address))
            if (m.Type == type)
                return (m.Flags & SharedFlag) != 0
                    ? throw Damaged(m.At, "a shared message that refers to another shared message")
                    : m;
        throw Damaged(from, $"a shared message whose object header at byte {address} lacks it");
    }

    /// <summary>The datatype a datatype message holds, following it to a committed datatype if shared.</summary>
    (long End, uint Size) DatatypeOf(Message m) =>
        (m.Flags & SharedFlag) != 0 ? (m.End, Committed(SharedAddress(m, m.At), m.At)) : Datatype(m, m.At, 0);

    uint Committed(long address, long from)
    {
        var type = Referenced(address, DatatypeType, from);
        return Datatype(type, type.At, 0).Size;
    }

    /// <summary>Where a shared message (version 1: 8 bytes before the address, 2 and 3: 2) keeps its address.
    /// </summary>
    long SharedAddress(Message m, long at)
    {
        int version = (int)Unsigned(at, 1, "a shared message");
        int type = (int)Unsigned(at + 1, 1, "a shared message");
        if (version == 3 && type == 1)
            throw Unsupported(m, "a shared-message heap");
        long field = at + (version == 1 ? 8 : 2);
        Fits(m, field, (ulong)offsetSize, "a shared message");
        return Address(field, "a shared message");
    }

    long SharedEnd(long at) => at + ((int)Unsigned(at, 1, "a shared message") == 1 ? 8 : 2) + offsetSize;

    const int ContinuationType = 0x10;
    const int DatatypeType = 0x03;
    const int DataspaceType = 0x01;
    const int FilterPipelineType = 0x0B;
    const int SharedFlag = 0x02;

    readonly record struct Message(int Type, int Flags, long At, int Size)
    {
        public long End => At + Size;
    }

    /// <summary>Reads messages as PureHDF does: while more than a message prefix is left of the block. A message
    /// that runs past its block would make PureHDF read on into whatever follows, so it is refused.</summary>
    void ReadMessages(long at, ulong length, int version, bool creationOrder, List<Message> into)
    {
        int prefix = version == 1 ? 8 : 4 + (creationOrder ? 2 : 0);
        if (length > (ulong)(bytes.Length - at))
            throw Damaged(at, $"an object header block of {length} bytes runs past the end of the file");
        long end = at + (long)length;
        int gap = version == 1 ? 0 : prefix;
        for (long p = at; end - p > gap; )
        {
            Spend(p);
            Need(p, prefix, "an object header message");
            int type = version == 1 ? (int)Unsigned(p, 2, "a message") : bytes[p];
            int size = (int)Unsigned(p + (version == 1 ? 2 : 1), 2, "a message");
            int flags = bytes[p + (version == 1 ? 4 : 3)];
            long data = p + prefix;
            if (size > end - data)
                throw Damaged(p, $"an object header message of {size} bytes that runs past its block");
            into.Add(new Message(type, flags, data, size));
            p = data + size;
        }
    }

    (long Block, long Length) Continuation(Message m)
    {
        long block = Address(m.At, "an object header continuation");
        ulong length = Unsigned(m.At + offsetSize, lengthSize, "an object header continuation");
        if (length > (ulong)(bytes.Length - block))
            throw Damaged(m.At, $"an object header continuation of {length} bytes runs past the end of the file");
        return (block, (long)length);
    }

    void CheckMessage(Message m, uint elementSize, bool filtered)
    {
        if ((m.Flags & SharedFlag) != 0 && m.Type is 0x01 or 0x03 or 0x04 or 0x05 or 0x0B or 0x0C)
        {
            // PureHDF parses the whole header the message is kept in; that message is checked there.
            Enqueue(SharedAddress(m, m.At));
            return;
        }
        switch (m.Type)
        {
            case 0x02:
                // Link info: a fractal heap address means dense link storage.
                if (
                    OptionalAddress(m.At + 2 + ((Unsigned(m.At + 1, 1, "link info") & 1) != 0 ? 8 : 0), "link info")
                    is not null
                )
                    throw Unsupported(m, "dense link storage (a fractal heap, written with libver=\"latest\")");
                break;
            case 0x04:
                Fits(m, m.At + 4, Unsigned(m.At, 4, "a fill value"), "a fill value");
                break;
            case 0x05:
                FillValue(m);
                break;
            case 0x06:
                Link(m);
                break;
            case 0x07:
                throw Unsupported(m, "external data files");
            case 0x08:
                Layout(m, elementSize, filtered);
                break;
            case 0x0C:
                Attribute(m);
                break;
            case 0x11:
                SymbolTable(
                    Address(m.At, "a symbol table's B-tree"),
                    Address(m.At + offsetSize, "a symbol table's local heap")
                );
                break;
            case 0x15:
                if (
                    OptionalAddress(
                        m.At + 2 + ((Unsigned(m.At + 1, 1, "attribute info") & 1) != 0 ? 2 : 0),
                        "attribute info"
                    )
                    is not null
                )
                    throw Unsupported(m, "dense attribute storage (a fractal heap, written with libver=\"latest\")");
                break;
        }
    }

    InvalidDataException Unsupported(Message m, string what) =>
        Damaged(m.At, $"{what}, which this reader does not accept (Keras and h5py's default format do not use it),");

    /// <summary>A claim of <paramref name="size"/> bytes starting at <paramref name="at"/> must end inside its
    /// message.</summary>
    void Fits(Message m, long at, ulong size, string what)
    {
        if (at > m.End || size > (ulong)(m.End - at))
            throw Damaged(at, $"{what} claiming {size} bytes in a message of {m.Size}");
    }

    void FillValue(Message m)
    {
        int version = (int)Unsigned(m.At, 1, "a fill value");
        if (version is 1 or 2)
        {
            if (Unsigned(m.At + 3, 1, "a fill value") == 1)
                Fits(m, m.At + 8, Unsigned(m.At + 4, 4, "a fill value"), "a fill value");
        }
        else if (version == 3)
        {
            int flags = (int)Unsigned(m.At + 1, 1, "a fill value");
            if ((flags & 0x10) == 0 && (flags & 0x20) != 0)
                Fits(m, m.At + 6, Unsigned(m.At + 2, 4, "a fill value"), "a fill value");
        }
    }

    void Link(Message m)
    {
        int flags = (int)Unsigned(m.At + 1, 1, "a link");
        long p = m.At + 2;
        int linkType = 0;
        if ((flags & 0x08) != 0)
            linkType = (int)Unsigned(p++, 1, "a link");
        if ((flags & 0x04) != 0)
            p += 8;
        if ((flags & 0x10) != 0)
            p++;
        int lengthSize = 1 << (flags & 3);
        ulong nameLength = Unsigned(p, lengthSize, "a link");
        p += lengthSize;
        Fits(m, p, nameLength, "a link name");
        p += (long)nameLength;
        if (linkType == 0)
        {
            Fits(m, p, (ulong)offsetSize, "a hard link");
            Enqueue(Address(p, "a hard link"));
        }
        else if (linkType == 64)
            throw Unsupported(m, "an external link");
    }

    /// <summary>Data layout: compact data must fit in the message; a chunk, which PureHDF allocates whole, may be
    /// no larger than the file could inflate to (1032x, DEFLATE's limit), and a stored (compressed) chunk, which
    /// PureHDF reads whole, must lie inside the file.</summary>
    void Layout(Message m, uint elementSize, bool filtered)
    {
        int version = (int)Unsigned(m.At, 1, "a data layout");
        int layoutClass = (int)Unsigned(m.At + (version <= 2 ? 2 : 1), 1, "a data layout");
        if (layoutClass == 3)
            throw Unsupported(m, "a virtual dataset");
        if (version is 1 or 2)
        {
            int rank = (int)Unsigned(m.At + 1, 1, "a data layout");
            long dims = m.At + 8 + (layoutClass == 0 ? 0 : offsetSize);
            double chunk = Dimensions(m, dims, rank, 4);
            if (layoutClass == 0)
                Fits(m, dims + 4L * rank + 4, Unsigned(dims + 4L * rank, 4, "a data layout"), "compact data");
            else if (layoutClass == 2)
            {
                CheckChunk(m, chunk);
                if (OptionalAddress(m.At + 8, "a chunk B-tree") is long btree)
                    ChunkBTreeNode(btree, rank, 0);
            }
        }
        else if (version is 3 or 4 && layoutClass == 0)
            Fits(m, m.At + 4, Unsigned(m.At + 2, 2, "a data layout"), "compact data");
        else if (version == 3 && layoutClass == 2)
        {
            int rank = (int)Unsigned(m.At + 2, 1, "a data layout");
            CheckChunk(m, Dimensions(m, m.At + 3 + offsetSize, rank, 4));
            if (OptionalAddress(m.At + 3, "a chunk B-tree") is long btree)
                ChunkBTreeNode(btree, rank, 0);
        }
        else if (version == 4 && layoutClass == 2)
        {
            int flags = (int)Unsigned(m.At + 2, 1, "a data layout");
            int rank = (int)Unsigned(m.At + 3, 1, "a data layout");
            int encoded = (int)Unsigned(m.At + 4, 1, "a data layout");
            if (encoded is not (1 or 2 or 4 or 8))
                throw Damaged(m.At, $"chunk dimensions of {encoded} bytes");
            CheckChunk(m, Math.Max(1, elementSize) * Dimensions(m, m.At + 5, rank, encoded));
            long index = m.At + 5 + (long)rank * encoded;
            int indexType = (int)Unsigned(index, 1, "a chunk index");
            if (indexType == 1 && (flags & 2) != 0)
            {
                ulong stored = Unsigned(index + 1, lengthSize, "a single chunk's size");
                if (OptionalAddress(index + 1 + lengthSize + 4, "a single chunk") is long chunk)
                    if (stored > (ulong)(bytes.Length - chunk))
                        throw Damaged(index, $"a stored chunk claiming {stored} bytes, more than the file holds");
            }
            else if (filtered && indexType is not (1 or 2))
                throw Unsupported(m, $"a compressed dataset with chunk index type {indexType}");
        }
    }

    double Dimensions(Message m, long at, int rank, int size)
    {
        Fits(m, at, (ulong)rank * (ulong)size, "chunk dimensions");
        double product = 1;
        for (int i = 0; i < rank; i++)
            product *= Unsigned(at + (long)i * size, size, "chunk dimensions");
        return product;
    }

    void CheckChunk(Message m, double chunkBytes)
    {
        if (chunkBytes > Math.Min(int.MaxValue, 1032.0 * bytes.Length))
            throw Damaged(m.At, $"a chunk claiming {chunkBytes:F0} bytes");
    }

    /// <summary>A version 1 B-tree node of a chunked dataset ("TREE", type 1): each key holds the stored size of
    /// the chunk it leads to.</summary>
    void ChunkBTreeNode(long at, int rank, int depth)
    {
        long keySize = 8 + 8L * rank;
        var (level, entries, keys) = BTreeNode(at, 1, depth, keySize, "a chunk B-tree node");
        for (int i = 0; i < entries; i++)
        {
            long key = keys + i * (keySize + offsetSize);
            long child = Address(key + keySize, "a chunk B-tree child");
            if (level > 0)
                ChunkBTreeNode(child, rank, depth + 1);
            else if (Unsigned(key, 4, "a chunk's size") > (ulong)(bytes.Length - child))
                throw Damaged(key, $"a stored chunk claiming {Unsigned(key, 4, "a chunk")} bytes beyond the file");
        }
    }

    /// <summary>An attribute's data is stored in its message: what the datatype and dataspace claim must fit there.
    /// Read as PureHDF reads it: the name up to its NUL (ignoring the name size), the datatype as decoded, padding
    /// computed from the declared sizes in version 1.</summary>
    void Attribute(Message m)
    {
        int version = (int)Unsigned(m.At, 1, "an attribute");
        int flags = version == 1 ? 0 : (int)Unsigned(m.At + 1, 1, "an attribute");
        int datatypeSize = (int)Unsigned(m.At + 4, 2, "an attribute");
        int dataspaceSize = (int)Unsigned(m.At + 6, 2, "an attribute");
        long p = m.At + (version == 3 ? 9 : 8);
        p = NullTerminated(m, p, pad: version == 1);
        uint size;
        if ((flags & 0x01) != 0)
        {
            size = Committed(SharedAddress(m, p), p);
            p = SharedEnd(p);
        }
        else
            (p, size) = Datatype(m, p, 0);
        if (version == 1)
            p += Padding(datatypeSize);
        double elements;
        if ((flags & 0x02) != 0)
        {
            var space = Referenced(SharedAddress(m, p), DataspaceType, p);
            Dataspace(space, space.At, out elements);
            p = SharedEnd(p);
        }
        else
            p = Dataspace(m, p, out elements);
        if (version == 1)
            p += Padding(dataspaceSize);
        double claimed = elements * size;
        if (p > m.End || claimed > m.End - p)
            throw Damaged(m.At, $"an attribute claiming {claimed:F0} bytes in a message of {m.Size}");
    }

    static int Padding(int size) => (8 - size % 8) % 8;

    long NullTerminated(Message m, long p, bool pad)
    {
        int end = p < m.End ? Array.IndexOf(bytes, (byte)0, (int)p, (int)(m.End - p)) : -1;
        if (end < 0)
            throw Damaged(p, "a name that runs past its message");
        long length = end - p + 1;
        return end + 1 + (pad ? (8 - length % 8) % 8 : 0);
    }

    /// <summary>Where a datatype encoding ends, and its element size; enumeration values, which PureHDF allocates
    /// one by one at the type's size, must fit in the message.</summary>
    (long End, uint Size) Datatype(Message m, long p, int depth)
    {
        if (depth > MaxDatatypeDepth)
            throw Damaged(p, "datatypes nested too deep");
        Fits(m, p, 8, "a datatype");
        int version = bytes[p] >> 4;
        int typeClass = bytes[p] & 0x0F;
        int members = bytes[p + 1] | bytes[p + 2] << 8;
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)p + 4));
        long q = p + 8;
        switch (typeClass)
        {
            case 0 or 4:
                q += 4;
                break;
            case 1:
                q += 12;
                break;
            case 2:
                q += 2;
                break;
            case 3 or 7:
                break;
            case 5:
                q += bytes[p + 1];
                break;
            case 6:
                for (int i = 0; i < members; i++)
                {
                    q = NullTerminated(m, q, pad: version <= 2);
                    q += version switch
                    {
                        1 => 32,
                        2 => 4,
                        _ => MinimumBytes(size),
                    };
                    q = Datatype(m, q, depth + 1).End;
                }
                break;
            case 8:
                q = Datatype(m, q, depth + 1).End;
                for (int i = 0; i < members; i++)
                    q = NullTerminated(m, q, pad: version <= 2);
                Fits(m, q, (ulong)members * size, "enumeration values");
                q += (long)members * size;
                break;
            case 9:
                q = Datatype(m, q, depth + 1).End;
                break;
            case 10:
                Fits(m, q, 1, "an array datatype");
                int rank = bytes[q];
                q += 1 + (version == 2 ? 3 : 0) + 4L * rank * (version == 2 ? 2 : 1);
                q = Datatype(m, q, depth + 1).End;
                break;
            default:
                throw Damaged(p, $"datatype class {typeClass}");
        }
        if (q > m.End)
            throw Damaged(p, "a datatype that runs past its message");
        return (q, size);
    }

    /// <summary>The bytes HDF5 takes to write a value up to <paramref name="value"/> (at least one).</summary>
    static int MinimumBytes(uint value)
    {
        int bits = 1;
        while ((value >>= 1) != 0)
            bits++;
        return (bits + 7) / 8;
    }

    /// <summary>Where a dataspace encoding ends, and how many elements it holds.</summary>
    long Dataspace(Message m, long p, out double elements)
    {
        Fits(m, p, 4, "a dataspace");
        int version = bytes[p];
        int rank = bytes[p + 1];
        int flags = bytes[p + 2];
        int type = version == 1 ? (rank > 0 ? 1 : 0) : bytes[p + 3];
        long q = p + (version == 1 ? 8 : 4);
        Fits(m, q, (ulong)rank * (ulong)lengthSize, "a dataspace's dimensions");
        elements = type switch
        {
            0 => 1,
            2 => 0,
            _ => 1,
        };
        if (type == 1)
            for (int i = 0; i < rank; i++)
                elements *= Unsigned(q + (long)i * lengthSize, lengthSize, "a dataspace");
        q += (long)rank * lengthSize;
        if ((flags & 1) != 0)
            q += (long)rank * lengthSize;
        if ((flags & 2) != 0)
            q += (long)rank * lengthSize;
        return q;
    }
}
