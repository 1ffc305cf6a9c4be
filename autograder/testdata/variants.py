"""Correct and buggy answers to the graded cells, written the many ways students write them.

Each variant maps a grade_id to a list of (old text, new text) edits of the solution's
source of that cell; an edit (WHOLE, new source) replaces the whole cell. They are test
data: tests/test_assignment_catches_bugs.py proves that every correct variant passes
every test cell and that every bug fails the test cell that names it, with the message
that names it; the sample class and the calibration benchmarks use them too. The judge
was not tuned to this list: most of these were written after it, as students would.
"""
WHOLE = None  # an edit (WHOLE, source): the cell's new source, all of it

# --------------------------------------------------------------------------- train_step, written whole
HEAD = '''def train_step(generator, discriminator, optimizer_G, optimizer_D, adversarial_loss, real_imgs, labels):
    \'\'\'One generator update, then one discriminator update. Returns (d_loss, g_loss) as floats.\'\'\'
    batch_size = real_imgs.shape[0]

    # Adversarial ground truths
    valid = FloatTensor(batch_size, 1).fill_(1.0)
    fake = FloatTensor(batch_size, 1).fill_(0.0)
'''
RETURN = "\n    return d_loss.item(), g_loss.item()\n"


def train_step(body, head=HEAD, returns=RETURN):
    """A whole train_step cell: the template's head, the student's body, the template's return."""
    return {"train_step": [(WHOLE, head + body + returns)]}


SEED_1 = '''
    # Train Generator
    optimizer_G.zero_grad()
    z = FloatTensor(np.random.normal(0, 1, (batch_size, opt.latent_dim)))
    gen_labels = LongTensor(np.random.randint(0, opt.n_classes, batch_size))
    gen_imgs = generator(z, gen_labels)
    validity = discriminator(gen_imgs, gen_labels)
    g_loss = adversarial_loss(validity, valid)
    g_loss.backward()
    optimizer_G.step()

    # Train Discriminator
    optimizer_D.zero_grad()
    validity_real = discriminator(real_imgs, labels)
    d_real_loss = adversarial_loss(validity_real, valid)
    validity_fake = discriminator(gen_imgs.detach(), gen_labels)
    d_fake_loss = adversarial_loss(validity_fake, fake)
    d_loss = (d_real_loss + d_fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
'''

CORRECT_TRAIN_STEPS = {
    "correct train_step: PyTorch-GAN's cgan.py (numpy noise, reused fakes)": SEED_1,
    "correct train_step: one discriminator call on real and fake images together": '''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=real_imgs.device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=real_imgs.device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    scores = discriminator(torch.cat([real_imgs, gen_imgs.detach()]), torch.cat([labels, gen_labels]))
    d_loss = adversarial_loss(scores, torch.cat([valid, fake]))
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: one discriminator call, scores split in two": '''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    both = discriminator(torch.cat([real_imgs, gen_imgs.detach()], dim=0), torch.cat([labels, gen_labels], dim=0))
    real_scores, fake_scores = both[:batch_size], both[batch_size:]
    d_loss = 0.5 * (adversarial_loss(real_scores, valid) + adversarial_loss(fake_scores, fake))
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: keyword arguments, targets first in the loss": '''
    optimizer_G.zero_grad()
    noise = torch.randn(batch_size, opt.latent_dim, device=device)
    wanted = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(noise=noise, labels=wanted)
    g_loss = adversarial_loss(valid, discriminator(img=gen_imgs, labels=wanted))
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    real_loss = adversarial_loss(valid, discriminator(img=real_imgs, labels=labels))
    fake_loss = adversarial_loss(fake, discriminator(img=gen_imgs.detach(), labels=wanted))
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: F.mse_loss, ones_like/zeros_like targets, summed D loss": '''
    import torch.nn.functional as F
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim).to(device)
    gen_labels = torch.randint(opt.n_classes, (batch_size,)).to(device)
    gen_imgs = generator(z, gen_labels)
    out = discriminator(gen_imgs, gen_labels)
    g_loss = F.mse_loss(out, torch.ones_like(out))
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    real_out = discriminator(real_imgs, labels)
    fake_out = discriminator(gen_imgs.detach(), gen_labels)
    d_loss = F.mse_loss(real_out, torch.ones_like(real_out)) + F.mse_loss(fake_out, torch.zeros_like(fake_out))
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: the squared error written out": '''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    y = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, y)
    g_loss = ((discriminator(gen_imgs, y) - 1) ** 2).mean()
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (((discriminator(real_imgs, labels) - 1) ** 2).mean() + (discriminator(gen_imgs.detach(), y) ** 2).mean()) / 2
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: discriminator first, as in DCGAN's example": '''
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)

    optimizer_D.zero_grad()
    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()

    optimizer_G.zero_grad()
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()
''',
    "correct train_step: discriminator first, fresh images for the generator": '''
    optimizer_D.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    with torch.no_grad():
        fakes = generator(z, gen_labels)
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(fakes, gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()

    optimizer_G.zero_grad()
    z2 = torch.randn(batch_size, opt.latent_dim, device=device)
    labels2 = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    g_loss = adversarial_loss(discriminator(generator(z2, labels2), labels2), valid)
    g_loss.backward()
    optimizer_G.step()
''',
    "correct train_step: discriminator frozen during the generator update, one zero_grad at the top": '''
    optimizer_G.zero_grad()
    optimizer_D.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    for p in discriminator.parameters():
        p.requires_grad_(False)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()
    for p in discriminator.parameters():
        p.requires_grad_(True)

    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: model.zero_grad(), zero_grad(set_to_none=False)": '''
    generator.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad(set_to_none=False)
    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: fakes generated with the real batch's labels": '''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_imgs = generator(z, labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: fresh fakes under torch.no_grad(), noise with .normal_()": '''
    optimizer_G.zero_grad()
    z = FloatTensor(batch_size, opt.latent_dim).normal_(0, 1)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    g_loss = adversarial_loss(discriminator(generator(z, gen_labels), gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    with torch.no_grad():
        z = torch.normal(0.0, 1.0, size=(batch_size, opt.latent_dim), device=device)
        more_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
        gen_imgs = generator(z, more_labels)
    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs, more_labels), fake)
    d_loss = 0.5 * real_loss + 0.5 * fake_loss
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: every forward pass first, then the two updates": '''
    z = torch.randn(len(labels), opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (len(labels),), device=device)
    gen_imgs = generator(z, gen_labels)
    real_scores = discriminator(real_imgs, labels)
    fake_scores = discriminator(gen_imgs.detach(), gen_labels)

    optimizer_G.zero_grad()
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(real_scores, valid) + adversarial_loss(fake_scores, fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: retain_graph=True instead of detach()": '''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward(retain_graph=True)
    optimizer_G.step()

    optimizer_D.zero_grad()
    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)
    d_loss = (fake_loss + real_loss) / 2
    d_loss.backward()
    optimizer_D.step()
''',
    "correct train_step: its own MSELoss and torch.full targets": '''
    criterion = nn.MSELoss()
    ones = torch.full((batch_size, 1), 1.0, device=device)
    zeros = torch.full((batch_size, 1), 0.0, device=device)
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    c = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    x_fake = generator(z, c)
    g_loss = criterion(discriminator(x_fake, c), ones)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (criterion(discriminator(real_imgs, labels), ones) + criterion(discriminator(x_fake.detach(), c), zeros)) / 2
    d_loss.backward()
    optimizer_D.step()
''',
}

BUGGY_TRAIN_STEPS = {  # name: (body, the test cell that must fail, a phrase of its message)
    "D's update includes the generator update's gradients (one zero_grad at the top)": ('''
    optimizer_G.zero_grad()
    optimizer_D.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "call optimizer_D.zero_grad()"),
    "zero_grad() after backward()": ('''
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.zero_grad()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "call g_loss.backward() before optimizer_G.step()"),
    "no detach(): D's backward goes through the generator again": ('''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), fake)
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "gen_imgs.detach()"),
    "fakes scored with the real labels in D's update": ('''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), labels), fake)
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "score them with the labels they were generated with"),
    "fakes scored with the real labels in G's update": ('''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "In the generator update the discriminator scored the generated images with the real"),
    "the same noise and labels on every call (re-seeded inside)": ('''
    torch.manual_seed(0)
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "the same noise"),
    "the last class is never generated": ('''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes - 1, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "never asked for the classes [9]"),
    "a fixed batch size of opt.batch_size": ('''
    optimizer_G.zero_grad()
    z = torch.randn(opt.batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (opt.batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step_hidden", "take the batch size from the batch"),
    "the generator steps twice": ('''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "Expected optimizer_G.step() once"),
    "label smoothing: real images aimed at 0.9": ('''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid * 0.9)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "The discriminator's update does not match the reference update"),
    "noise with standard deviation 0.1": ('''
    optimizer_G.zero_grad()
    z = 0.1 * torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid)
              + adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "standard deviation"),
    "the D update reuses the generator update's scores": ('''
    optimizer_G.zero_grad()
    z = torch.randn(batch_size, opt.latent_dim, device=device)
    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=device)
    gen_imgs = generator(z, gen_labels)
    validity = discriminator(gen_imgs, gen_labels)
    g_loss = adversarial_loss(validity, valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_loss = (adversarial_loss(discriminator(real_imgs, labels), valid) + adversarial_loss(validity, fake)) / 2
    d_loss.backward()
    optimizer_D.step()
''', "test_train_step", "gen_imgs.detach()"),
}
SWAPPED_RETURN = "\n    return g_loss.item(), d_loss.item()\n"
TENSOR_RETURN = "\n    return d_loss, g_loss\n"

# --------------------------------------------------------------------------- the other cells
SEED1_GENERATOR = [  # seed 1's MLP generator (no BatchNorm), with its (N, 28, 28) output fixed
    ("""        def block(in_features, out_features, normalize=True):
            layers = [nn.Linear(in_features, out_features)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_features, eps=0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(opt.latent_dim + opt.label_dim, 128, normalize=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, int(np.prod(img_shape))),
            nn.Tanh(),
        )
""", """        self.model = nn.Sequential(
            nn.Linear(150, 128), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(128, 256), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 512), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1024), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 784), nn.Tanh())
"""),
    ("""        gen_input = torch.cat((noise, self.label_embedding(labels)), dim=1)
        img = self.model(gen_input)
        img = img.view(img.size(0), *img_shape)
""", """        noise = noise.view(noise.size(0), 100)
        c = self.label_embedding(labels)
        x = torch.cat([noise, c], 1)
        out = self.model(x)
        img = out.view(x.size(0), 1, 28, 28)
"""),
]
SEED1_DISCRIMINATOR = [  # seed 1's discriminator (Dropout 0.3, Sigmoid), with its squeeze() removed
    ("""        self.model = nn.Sequential(
            nn.Linear(int(np.prod(img_shape)) + opt.label_dim, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1),
        )
""", """        self.model = nn.Sequential(
            nn.Linear(834, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(512, 1), nn.Sigmoid())
"""),
    ("""        d_in = torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), dim=1)
        validity = self.model(d_in)
""", """        img = img.view(img.size(0), 784)
        c = self.label_embedding(labels)
        x = torch.cat([img, c], 1)
        validity = self.model(x)
"""),
]
CONV_GENERATOR = '''class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.label_embedding = nn.Embedding(opt.n_classes, opt.label_dim)
        self.project = nn.Sequential(nn.Linear(opt.latent_dim + opt.label_dim, 64 * 7 * 7), nn.BatchNorm1d(64 * 7 * 7),
                                     nn.ReLU(True))
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, noise, labels):
        x = self.project(torch.cat([noise, self.label_embedding(labels)], dim=-1))
        return self.deconv(x.view(-1, 64, 7, 7))
'''
ONE_HOT_GENERATOR = '''import torch.nn.functional as F

class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.label_embedding = nn.Embedding(opt.n_classes, opt.label_dim)  # the template's; one-hot is used instead
        self.model = nn.Sequential(nn.Linear(opt.latent_dim + opt.n_classes, 256), nn.LeakyReLU(0.2),
                                   nn.Linear(256, 512), nn.BatchNorm1d(512, 0.8), nn.LeakyReLU(0.2),
                                   nn.Linear(512, 784), nn.Tanh())

    def forward(self, noise, labels):
        one_hot = F.one_hot(labels, opt.n_classes).float()
        return self.model(torch.cat((noise, one_hot), 1)).reshape(-1, *img_shape)
'''
MULTIPLIED_GENERATOR = '''class Generator(nn.Module):
    """AC-GAN style: the label embedding multiplies the noise."""
    def __init__(self):
        super().__init__()
        self.label_emb = nn.Embedding(opt.n_classes, opt.latent_dim)
        self.model = nn.Sequential(nn.Linear(opt.latent_dim, 256), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.2),
                                   nn.Linear(256, 784), nn.Tanh())

    def forward(self, noise, labels):
        return self.model(torch.mul(self.label_emb(labels), noise)).view(noise.shape[0], 1, 28, 28)
'''
CONV_DISCRIMINATOR = '''class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.label_embedding = nn.Embedding(opt.n_classes, 28 * 28)
        self.features = nn.Sequential(nn.Conv2d(2, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1),
                                      nn.LeakyReLU(0.2), nn.Flatten())
        self.score = nn.Linear(64 * 7 * 7, 1)

    def forward(self, img, labels):
        label_plane = self.label_embedding(labels).view(-1, 1, 28, 28)
        return self.score(self.features(torch.cat([img, label_plane], dim=1)))
'''
NUMPY_LATENT = [("""    z = torch.randn(n_samples, latent_dim, device=device)
    labels = torch.randint(0, n_classes, (n_samples,), device=device)
""", """    x_input = np.random.randn(latent_dim * n_samples)
    z = FloatTensor(x_input.reshape(n_samples, latent_dim))
    labels = LongTensor(np.random.randint(0, n_classes, n_samples))
""")]

CORRECT = {
    "correct: seed 1's architecture, its two shape bugs fixed": {
        "generator": SEED1_GENERATOR, "discriminator": SEED1_DISCRIMINATOR},
    "correct: label embedding first in both concatenations": {
        "generator": [("torch.cat((noise, self.label_embedding(labels)), dim=1)",
                       "torch.cat((self.label_embedding(labels), noise), dim=1)")],
        "discriminator": [("torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), dim=1)",
                           "torch.cat((self.label_embedding(labels), img.view(img.size(0), -1)), dim=1)")]},
    "correct: fresh fakes for D, summed loss, numpy noise (seed 1's way)": {"train_step": [
        ("    fake_loss = adversarial_loss(discriminator(gen_imgs.detach(), gen_labels), fake)\n",
         "    z2 = FloatTensor(np.random.randn(batch_size, opt.latent_dim))\n"
         "    labels2 = LongTensor(np.random.randint(0, opt.n_classes, batch_size))\n"
         "    fake_loss = adversarial_loss(discriminator(generator(z2, labels2), labels2), fake)\n"),
        ("d_loss = (real_loss + fake_loss) / 2", "d_loss = real_loss + fake_loss")]},
    "correct: a convolutional generator and discriminator": {
        "generator": [(WHOLE, CONV_GENERATOR)], "discriminator": [(WHOLE, CONV_DISCRIMINATOR)]},
    "correct: one-hot labels, BatchNorm1d(n, 0.8) (PyTorch-GAN)": {"generator": [(WHOLE, ONE_HOT_GENERATOR)]},
    "correct: label embedding multiplied with the noise, Dropout in G": {"generator": [(WHOLE, MULTIPLIED_GENERATOR)]},
    "correct: latent points with numpy (the seeds' way)": {"generate_latent_points": NUMPY_LATENT},
    "correct: latent points with torch.normal and randint(high, size)": {"generate_latent_points": [(
        "    z = torch.randn(n_samples, latent_dim, device=device)\n"
        "    labels = torch.randint(0, n_classes, (n_samples,), device=device)\n",
        "    z = torch.normal(0, 1, size=(n_samples, latent_dim)).to(device)\n"
        "    labels = torch.randint(n_classes, size=(n_samples,)).to(device)\n")]},
    **{name: train_step(body) for name, body in CORRECT_TRAIN_STEPS.items()},
}

# Common bugs: {name: ({grade_id: edits}, the test cell that must fail, a phrase its message must contain)}.
BUGS = {
    # the seeds' own bugs
    "generator returns (N, 28, 28) (seed 1)": (
        {"generator": [("img.view(img.size(0), *img_shape)", "img.view(img.size(0), 28, 28)")]},
        "test_generator", "channel dimension is missing"),
    "discriminator output squeeze()d to (N,) (seed 1)": (
        {"discriminator": [("validity = self.model(d_in)", "validity = self.model(d_in).squeeze()")]},
        "test_discriminator", "Did you call .squeeze()?"),
    # architecture
    "no Tanh at the end of the generator": (
        {"generator": [("            nn.Tanh(),\n", "")]},
        "test_generator_hidden", "nn.Tanh()"),
    "Sigmoid instead of Tanh": (
        {"generator": [("            nn.Tanh(),\n", "            nn.Sigmoid(),\n")]},
        "test_generator_hidden", "not nn.Sigmoid()"),
    "generator ignores its labels": (
        {"generator": [("torch.cat((noise, self.label_embedding(labels)), dim=1)",
                        "torch.cat((noise, 0 * self.label_embedding(labels)), dim=1)")]},
        "test_generator", "the generator ignores its labels"),
    "generator draws its own noise": (
        {"generator": [("gen_input = torch.cat((noise,", "gen_input = torch.cat((torch.randn_like(noise),")]},
        "test_generator", "draw its own random numbers"),
    "generator ignores its noise": (
        {"generator": [("gen_input = torch.cat((noise,", "gen_input = torch.cat((torch.zeros_like(noise),")]},
        "test_generator", "the generator ignores its noise"),
    "generator returns flat (N, 784) images": (
        {"generator": [("img = img.view(img.size(0), *img_shape)\n", "")]},
        "test_generator", "expected (1, 1, 28, 28)"),
    "generator output doubled (2 * tanh)": (
        {"generator": [("img = img.view(img.size(0), *img_shape)", "img = 2 * img.view(img.size(0), *img_shape)")]},
        "test_generator_hidden", "nn.Tanh()"),
    "discriminator ignores its labels": (
        {"discriminator": [("self.label_embedding(labels)), dim=1)", "0 * self.label_embedding(labels)), dim=1)")]},
        "test_discriminator", "the discriminator ignores its labels"),
    "discriminator ignores the image": (
        {"discriminator": [("torch.cat((img.view(img.size(0), -1),", "torch.cat((0 * img.view(img.size(0), -1),")]},
        "test_discriminator", "ignores the image"),
    "discriminator gives two scores per image": (
        {"discriminator": [("            nn.Linear(512, 1),\n", "            nn.Linear(512, 2),\n")]},
        "test_discriminator", "expected (1, 1): one score per image"),
    "discriminator detaches the image": (
        {"discriminator": [("torch.cat((img.view(img.size(0), -1),", "torch.cat((img.detach().view(img.size(0), -1),")]},
        "test_discriminator_hidden", "No gradient flows"),
    # train_step: the template's blocks edited
    "no optimizer_G.zero_grad()": (
        {"train_step": [("    optimizer_G.zero_grad()\n", "")]},
        "test_train_step", "call optimizer_G.zero_grad()"),
    "no optimizer_D.zero_grad()": (
        {"train_step": [("    optimizer_D.zero_grad()\n", "")]},
        "test_train_step", "call optimizer_D.zero_grad()"),
    "optimizer_G.step() missing": (
        {"train_step": [("    optimizer_G.step()\n", "")]},
        "test_train_step", "Expected optimizer_G.step() once and optimizer_D.step() once"),
    "optimizer_D.step() missing": (
        {"train_step": [("    optimizer_D.step()\n", "")]},
        "test_train_step", "Expected optimizer_G.step() once and optimizer_D.step() once"),
    "swapped real/fake targets for D": (
        {"train_step": [("(real_imgs, labels), valid)", "(real_imgs, labels), fake)"),
                        ("gen_labels), fake)", "gen_labels), valid)")]},
        "test_train_step", "targets of the discriminator's losses are swapped"),
    "G trained toward fake": (
        {"train_step": [("discriminator(gen_imgs, gen_labels), valid)", "discriminator(gen_imgs, gen_labels), fake)")]},
        "test_train_step", "The generator is trained towards `valid`"),
    "fake_loss aimed at valid": (
        {"train_step": [("gen_labels), fake)", "gen_labels), valid)")]},
        "test_train_step", "fake_loss compares the scores of generated images with `valid`"),
    "D trained on real images only": (
        {"train_step": [("d_loss = (real_loss + fake_loss) / 2", "d_loss = real_loss")]},
        "test_train_step", "never trained on generated images"),
    "D trained on generated images only": (
        {"train_step": [("d_loss = (real_loss + fake_loss) / 2", "d_loss = fake_loss")]},
        "test_train_step", "never trained on the real images"),
    "real images scored with random labels": (
        {"train_step": [("discriminator(real_imgs, labels)", "discriminator(real_imgs, gen_labels)")]},
        "test_train_step", "labels other than their own"),
    "uniform noise in train_step (torch.rand)": (
        {"train_step": [("z = torch.randn(", "z = torch.rand(")]},
        "test_train_step", "not the uniform one (torch.rand)"),
    "train_step returns (g_loss, d_loss)": (
        {"train_step": [("    return d_loss.item(), g_loss.item()", "    return g_loss.item(), d_loss.item()")]},
        "test_train_step", "which is (g_loss, d_loss)"),
    "train_step returns tensors": (
        {"train_step": [("    return d_loss.item(), g_loss.item()", "    return d_loss, g_loss")]},
        "test_train_step", "two Python floats"),
    **{f"train_step: {name}": (train_step(body), test, phrase) for name, (body, test, phrase) in BUGGY_TRAIN_STEPS.items()},
    # generate_latent_points
    "uniform noise in generate_latent_points": (
        {"generate_latent_points": [("z = torch.randn(", "z = torch.rand(")]},
        "test_generate_latent_points", "not the uniform one (torch.rand)"),
    "labels miss the last class": (
        {"generate_latent_points": [("torch.randint(0, n_classes,", "torch.randint(0, n_classes - 1,")]},
        "test_generate_latent_points", "expected every class 0..9"),
    "latent points use opt instead of their arguments": (
        {"generate_latent_points": [("z = torch.randn(n_samples, latent_dim", "z = torch.randn(n_samples, opt.latent_dim")]},
        "test_generate_latent_points_hidden", "use the arguments"),
    "latent points re-seeded on every call": (
        {"generate_latent_points": [("    z = torch.randn(", "    torch.manual_seed(0)\n    z = torch.randn(")]},
        "test_generate_latent_points_hidden", "Two calls returned the same z"),
    "latent labels as floats": (
        {"generate_latent_points": [("labels = torch.randint(0, n_classes, (n_samples,), device=device)",
                                     "labels = torch.randint(0, n_classes, (n_samples,), device=device).float()")]},
        "test_generate_latent_points", "labels have dtype torch.float32"),
    "latent points returned as (labels, z)": (
        {"generate_latent_points": [("    return z, labels", "    return labels, z")]},
        "test_generate_latent_points", "returned z of shape (5,)"),
    "latent noise with standard deviation 2": (
        {"generate_latent_points": [("z = torch.randn(n_samples, latent_dim, device=device)",
                                     "z = 2 * torch.randn(n_samples, latent_dim, device=device)")]},
        "test_generate_latent_points", "standard deviation"),
}


def apply(source, edits):
    """`source` with every (old, new) edit applied; fails if an edit no longer applies."""
    for old, new in edits:
        if old is WHOLE:
            source = new
            continue
        if old not in source:
            raise ValueError(f"variant edit no longer applies to the solution: {old!r}")
        source = source.replace(old, new)
    return source


def sources(edits_by_cell, solution_sources):
    """{grade_id: edited source} for load_cells(replace=...)."""
    return {grade_id: apply(solution_sources[grade_id], edits) for grade_id, edits in edits_by_cell.items()}
